// SHAP contributions of one prediction as a horizontal bar chart (log-odds; green pushes up).
import {
  Bar,
  BarChart,
  CartesianGrid,
  Cell,
  ReferenceLine,
  ResponsiveContainer,
  Tooltip,
  XAxis,
  YAxis,
} from "recharts";
import type { Explanation } from "../api/types";
import { useTheme } from "../hooks/useTheme";
import { chartColors } from "./ui";

export function topContributions(e: Explanation, n = 10): { feature: string; value: number }[] {
  return Object.entries(e.contributions)
    .map(([feature, value]) => ({ feature, value }))
    .sort((a, b) => Math.abs(b.value) - Math.abs(a.value))
    .slice(0, n);
}

export function ShapChart({ explanation, n = 10 }: { explanation: Explanation; n?: number }) {
  const [theme] = useTheme();
  const c = chartColors(theme === "dark");
  const data = topContributions(explanation, n);
  return (
    <figure
      data-testid="shap-chart"
      aria-label={`SHAP contributions: ${data.map((d) => `${d.feature} ${d.value >= 0 ? "+" : ""}${d.value.toFixed(3)}`).join(", ")}`}
    >
      <div style={{ height: Math.max(160, data.length * 26 + 40) }} className="w-full">
        <ResponsiveContainer width="100%" height="100%">
          <BarChart
            data={data}
            layout="vertical"
            margin={{ top: 4, right: 16, bottom: 4, left: 8 }}
          >
            <CartesianGrid stroke={c.grid} strokeDasharray="3 3" horizontal={false} />
            <XAxis
              type="number"
              stroke={c.axis}
              fontSize={11}
              tickFormatter={(v: number) => v.toFixed(2)}
            />
            <YAxis type="category" dataKey="feature" stroke={c.axis} fontSize={11} width={130} />
            <ReferenceLine x={0} stroke={c.muted} />
            <Tooltip
              contentStyle={{ background: c.tooltipBg, borderColor: c.grid, fontSize: 12 }}
              formatter={(v) => [
                `${(v as number) >= 0 ? "+" : ""}${(v as number).toFixed(4)} ${explanation.units}`,
                "contribution",
              ]}
            />
            <Bar dataKey="value" isAnimationActive={false}>
              {data.map((d) => (
                <Cell key={d.feature} fill={d.value >= 0 ? c.up : c.down} />
              ))}
            </Bar>
          </BarChart>
        </ResponsiveContainer>
      </div>
      <figcaption className="text-xs text-slate-600 dark:text-slate-400">
        Contributions in {explanation.units} from base {explanation.base_value.toFixed(3)} to{" "}
        {explanation.margin.toFixed(3)} ({explanation.method}).
      </figcaption>
    </figure>
  );
}
