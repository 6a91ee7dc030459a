"""Referral and commission: sharers (推客/拓客), attribution, and the double-entry ledger their
earnings (and every other reward) are kept in."""
