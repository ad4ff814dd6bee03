// The wall clock as state, ticking every `periodMs`: render reads this instead of calling
// Date.now() itself, so a render stays pure and the times it shows refresh on their own.
import { useEffect, useState } from "react";

export function useNow(periodMs = 1000): number {
  const [now, setNow] = useState(() => Date.now());
  useEffect(() => {
    const id = setInterval(() => setNow(Date.now()), periodMs);
    return () => clearInterval(id);
  }, [periodMs]);
  return now;
}
