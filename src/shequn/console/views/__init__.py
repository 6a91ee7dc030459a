"""Console pages, one module per area. Like the API they only parse, authorize (through the
scoped queries) and render.

- ``home``: login, the dashboard, and the organisation's lists (stores, staff, shelf stock).
- ``groups``: customer groups, their members, invitations (with QR codes) and join rewards.
- ``join``: the public page behind every invitation QR code.
- ``orders``: orders (with the Excel export), one order and its refunds, the refund list, and
  the pickup counter.
- ``promotions``: product cards pushed into groups, and the week's promotion calendar.
- ``referrals``: 分销 — sharer applications, held commissions, settings, the month's statement.
- ``demand``: the demand river — messages, complaints, topics, proposals, deliveries.
- ``_common``: what every staff page shares: ``staff_view``, the acting staff, amounts in yuan.

``console/urls.py`` names each view by its module.
"""
