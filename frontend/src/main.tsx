import { QueryClient, QueryClientProvider } from "@tanstack/react-query";
import { StrictMode } from "react";
import { createRoot } from "react-dom/client";
import { BrowserRouter } from "react-router-dom";
import App from "./App";
import { latestQuery, shouldRetry } from "./api/queries";
import { currentSymbol } from "./lib/symbol";
import "./index.css";

const client = new QueryClient({
  defaultOptions: {
    queries: {
      retry: shouldRetry,
      retryDelay: (n) => Math.min(1000 * 2 ** n, 10000),
      refetchOnWindowFocus: false,
      staleTime: 10000,
    },
  },
});

// The Dashboard's headline is the newest forecast: ask for it now, while React boots, rather than
// after the first render (benchmarks/frontend.py's first_render_ms).
if (window.location.pathname === "/") {
  void client.prefetchQuery({ ...latestQuery(currentSymbol()), retry: false });
}

createRoot(document.getElementById("root")!).render(
  <StrictMode>
    <QueryClientProvider client={client}>
      <BrowserRouter>
        <App />
      </BrowserRouter>
    </QueryClientProvider>
  </StrictMode>,
);
