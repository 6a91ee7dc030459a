"""Promotions: flash sales (秒杀) now; group-buys, coupons and instant discounts next. Prices and
eligibility are decided here, in one place that ``place_order`` calls; quotas and per-member
limits are held by guarded UPDATEs and CHECK constraints, never by a check in Python."""
