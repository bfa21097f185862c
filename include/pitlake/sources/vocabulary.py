"""The values the shop's feeds may carry: ingestion quarantines anything else, the suites check them."""

from __future__ import annotations

EVENT_TYPES = ("page_view", "add_to_cart", "purchase")
CATEGORIES = ("books", "electronics", "fashion", "garden", "grocery", "home", "sports", "toys")
SEGMENTS = ("consumer", "small_business", "student")
COUNTRIES = ("DE", "FR", "GB", "NL", "PL", "SE", "US")
LOYALTY_TIERS = ("none", "bronze", "silver", "gold")
