"""Analytics: exposures, attribution, scans of stored profiles, estimates and size snapshots."""
