import "@testing-library/jest-dom/vitest";
import { cleanup, configure } from "@testing-library/react";
import { afterEach } from "vitest";

afterEach(() => cleanup());
// findBy*/waitFor deadlines: a liveness limit, not a measurement (1 s, the default, is too short
// for a page's queries on a loaded 2-core CI runner)
configure({ asyncUtilTimeout: 5000 });

// jsdom has no ResizeObserver; Recharts' ResponsiveContainer needs one.
class RO {
  observe() {}
  unobserve() {}
  disconnect() {}
}
(globalThis as unknown as { ResizeObserver: typeof RO }).ResizeObserver ??= RO;
