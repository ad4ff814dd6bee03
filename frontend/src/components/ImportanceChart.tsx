// Global feature importance (mean |SHAP|) across the registered versions: one line per feature.
import {
  CartesianGrid,
  Legend,
  Line,
  LineChart,
  ResponsiveContainer,
  Tooltip,
  XAxis,
  YAxis,
} from "recharts";
import { useTheme } from "../hooks/useTheme";
import { chartColors } from "./ui";

// distinct on both themes (Tailwind 700/400 steps)
const LIGHT = ["#1d4ed8", "#047857", "#b45309", "#7e22ce", "#be123c", "#0f766e"];
const DARK = ["#93c5fd", "#6ee7b7", "#fcd34d", "#d8b4fe", "#fda4af", "#5eead4"];

export function ImportanceChart({
  features,
  rows,
}: {
  features: string[];
  rows: Record<string, number | string>[];
}) {
  const [theme] = useTheme();
  const dark = theme === "dark";
  const c = chartColors(dark);
  const palette = dark ? DARK : LIGHT;
  return (
    <figure
      data-testid="importance-chart"
      aria-label={`Feature importance over ${rows.length} versions: ${features.join(", ")}`}
    >
      <div className="h-64 w-full">
        <ResponsiveContainer width="100%" height="100%">
          <LineChart data={rows} margin={{ top: 8, right: 16, bottom: 0, left: 0 }}>
            <CartesianGrid stroke={c.grid} strokeDasharray="3 3" />
            <XAxis dataKey="version" stroke={c.axis} fontSize={11} />
            <YAxis
              stroke={c.axis}
              fontSize={11}
              width={48}
              tickFormatter={(v: number) => v.toFixed(2)}
            />
            <Tooltip
              contentStyle={{ background: c.tooltipBg, borderColor: c.grid, fontSize: 12 }}
              formatter={(v) => (v as number).toFixed(4)}
            />
            <Legend wrapperStyle={{ fontSize: 12 }} />
            {features.map((f, i) => (
              <Line
                key={f}
                dataKey={f}
                stroke={palette[i % palette.length]}
                strokeWidth={2}
                dot
                isAnimationActive={false}
              />
            ))}
          </LineChart>
        </ResponsiveContainer>
      </div>
    </figure>
  );
}
