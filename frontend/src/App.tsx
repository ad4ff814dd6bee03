// The shell: header with navigation, the active-alert badge and theme switch, the API-down and
// stale-data banners, keyboard shortcuts, and the routes (each page is its own lazily loaded chunk).
import { lazy, Suspense, useState } from "react";
import { NavLink, Route, Routes, useNavigate } from "react-router-dom";
import { AlertBadge } from "./components/AlertBadge";
import { ApiBanner } from "./components/ApiBanner";
import { RefreshControl } from "./components/RefreshControl";
import { StaleBanner } from "./components/StaleBanner";
import { Loading } from "./components/ui";
import { SHORTCUTS, useShortcuts } from "./hooks/useShortcuts";
import { useTheme } from "./hooks/useTheme";
import PAGES from "./pages.json";

// The landing page is in the entry chunk (no second round trip before it can render); its
// charts and the other pages load lazily.
import Dashboard from "./pages/Dashboard";
const Predict = lazy(() => import("./pages/Predict"));
const Analytics = lazy(() => import("./pages/Analytics"));
const System = lazy(() => import("./pages/System"));
const Models = lazy(() => import("./pages/Models"));

// The pages (path, label, shortcut) in one file: the build copies it to dist/pages.json, from
// which the ingress knows which paths are pages (deep links and reloads; rayapp/serving/spa.py).
const NAV = PAGES.map((p) => ({ to: p.path, label: p.label, key: p.key }));

export default function App() {
  const [theme, toggleTheme] = useTheme();
  const [help, setHelp] = useState(false);
  const navigate = useNavigate();
  useShortcuts({
    ...Object.fromEntries(NAV.map((n) => [n.key, () => navigate(n.to)])),
    t: toggleTheme,
    "?": () => setHelp((h) => !h),
    Escape: () => setHelp(false),
  });

  return (
    <div className="min-h-screen">
      <a
        href="#main"
        className="sr-only focus:not-sr-only focus:absolute focus:left-2 focus:top-2 focus:z-50 focus:rounded focus:bg-white focus:p-2 focus:text-black"
      >
        Skip to content
      </a>
      <header className="sticky top-0 z-20 border-b border-slate-200 bg-white/90 backdrop-blur dark:border-slate-800 dark:bg-slate-950/90">
        <div className="mx-auto flex max-w-7xl flex-wrap items-center gap-x-4 gap-y-2 px-3 py-2 sm:px-4">
          <span className="text-base font-bold">
            <svg
              aria-hidden="true"
              viewBox="0 0 16 16"
              className="mr-1 inline h-4 w-4 align-[-2px] text-amber-500"
            >
              <circle cx="8" cy="8" r="8" fill="currentColor" />
              <path
                d="M5 4h4a2 2 0 0 1 0 4H5zm0 4h4.5a2 2 0 0 1 0 4H5z"
                fill="none"
                stroke="#fff"
                strokeWidth="1.5"
              />
            </svg>
            rayapp
          </span>
          <nav
            aria-label="Main"
            className="order-3 -mx-1 flex w-full gap-1 overflow-x-auto sm:order-none sm:w-auto"
          >
            {NAV.map((n) => (
              <NavLink
                key={n.to}
                to={n.to}
                end={n.to === "/"}
                title={`${n.label} (${n.key})`}
                className={({ isActive }) =>
                  `whitespace-nowrap rounded-md px-3 py-1.5 text-sm font-medium ${
                    isActive
                      ? "bg-blue-700 text-white dark:bg-blue-600"
                      : "text-slate-700 hover:bg-slate-100 dark:text-slate-200 dark:hover:bg-slate-800"
                  }`
                }
              >
                {n.label}
              </NavLink>
            ))}
          </nav>
          <div className="ml-auto flex flex-wrap items-center gap-2">
            <AlertBadge />
            <RefreshControl />
            <button
              type="button"
              onClick={() => setHelp((h) => !h)}
              aria-label="Keyboard shortcuts"
              title="Keyboard shortcuts (?)"
              className="rounded-md px-2 py-1 text-sm text-slate-700 hover:bg-slate-100 dark:text-slate-200 dark:hover:bg-slate-800"
            >
              ?
            </button>
            <button
              type="button"
              data-testid="theme-toggle"
              onClick={toggleTheme}
              aria-label={`Switch to ${theme === "dark" ? "light" : "dark"} theme`}
              title="Toggle theme (t)"
              className="rounded-md border border-slate-300 px-2 py-1 text-sm dark:border-slate-700"
            >
              {theme === "dark" ? "☀ Light" : "☾ Dark"}
            </button>
          </div>
        </div>
      </header>
      <ApiBanner />
      <StaleBanner />
      {help && (
        <div
          role="dialog"
          aria-modal="false"
          aria-label="Keyboard shortcuts"
          className="mx-auto mt-3 max-w-md rounded-lg border border-slate-300 bg-white p-4 text-sm shadow dark:border-slate-700 dark:bg-slate-900"
        >
          <div className="mb-2 font-semibold">Keyboard shortcuts</div>
          <dl className="grid grid-cols-[auto_1fr] gap-x-4 gap-y-1">
            {SHORTCUTS.map((s) => (
              <div key={s.key} className="contents">
                <dt>
                  <kbd className="rounded border border-slate-300 px-1.5 font-mono dark:border-slate-600">
                    {s.key}
                  </kbd>
                </dt>
                <dd>{s.what}</dd>
              </div>
            ))}
          </dl>
        </div>
      )}
      <main id="main" className="mx-auto max-w-7xl px-3 py-4 sm:px-4">
        <Suspense fallback={<Loading what="page" />}>
          <Routes>
            <Route path="/" element={<Dashboard />} />
            <Route path="/predict" element={<Predict />} />
            <Route path="/analytics" element={<Analytics />} />
            <Route path="/system" element={<System />} />
            <Route path="/models" element={<Models />} />
            <Route path="*" element={<p className="py-10 text-center">Page not found.</p>} />
          </Routes>
        </Suspense>
      </main>
    </div>
  );
}
