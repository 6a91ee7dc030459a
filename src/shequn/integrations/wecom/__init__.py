"""WeCom (企业微信) adapters: the callback transport crypto, and (next) the group-change
callback that keeps memberships in step with the customer groups."""
