"""Feature definitions, point-in-time joins, and the offline/online feature stores."""
