// PSI per feature (newest drift check) as horizontal bars with the warn and alert thresholds as
// lines; drifted features (past the alert threshold) in the alert colour and marked in the label.
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
import type { SymbolDrift } from "../api/types";
import { useTheme } from "../hooks/useTheme";
import { chartColors } from "./ui";

export function DriftChart({
  sym,
  warn,
  alert,
}: {
  sym: SymbolDrift;
  warn: number;
  alert: number;
}) {
  const [theme] = useTheme();
  const c = chartColors(theme === "dark");
  const data = sym.features
    .filter((f) => f.psi !== null)
    .map((f) => ({
      feature: f.drifted ? `${f.feature} ⚠` : f.feature,
      psi: f.psi!,
      drifted: f.drifted,
    }));
  const max = Math.max(alert * 1.2, ...data.map((d) => d.psi));
  return (
    <figure
      data-testid="drift-chart"
      aria-label={`PSI per feature for ${sym.symbol}: ${data.map((d) => `${d.feature} ${d.psi.toFixed(3)}`).join(", ")}`}
    >
      <div style={{ height: Math.max(140, data.length * 22 + 40) }} className="w-full">
        <ResponsiveContainer width="100%" height="100%">
          <BarChart
            data={data}
            layout="vertical"
            margin={{ top: 4, right: 16, bottom: 4, left: 8 }}
          >
            <CartesianGrid stroke={c.grid} strokeDasharray="3 3" horizontal={false} />
            <XAxis
              type="number"
              domain={[0, max]}
              stroke={c.axis}
              fontSize={11}
              tickFormatter={(v: number) => v.toFixed(2)}
            />
            <YAxis type="category" dataKey="feature" stroke={c.axis} fontSize={11} width={150} />
            <ReferenceLine
              x={warn}
              stroke={c.muted}
              strokeDasharray="4 4"
              label={{ value: "warn", fill: c.axis, fontSize: 10, position: "top" }}
            />
            <ReferenceLine
              x={alert}
              stroke={c.down}
              strokeDasharray="4 4"
              label={{ value: "alert", fill: c.axis, fontSize: 10, position: "top" }}
            />
            <Tooltip
              contentStyle={{ background: c.tooltipBg, borderColor: c.grid, fontSize: 12 }}
              formatter={(v) => [(v as number).toFixed(4), "PSI"]}
            />
            <Bar dataKey="psi" isAnimationActive={false}>
              {data.map((d) => (
                <Cell
                  key={d.feature}
                  fill={d.drifted ? c.down : d.psi > warn ? "#d97706" : c.price}
                />
              ))}
            </Bar>
          </BarChart>
        </ResponsiveContainer>
      </div>
    </figure>
  );
}
