"""Analytics of the service for its maintainers: conversations, understanding,
handoffs, 好差评, what was asked and not covered, response times, notices
(``report``), from conversation turns reduced from the tracker store per day
(``rollup``), exported as CSV (``export``). Tunables in ``analytics.yml``."""
