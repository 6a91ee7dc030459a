"""Members (会员): one person per phone per chain, with channel identities and consents."""
