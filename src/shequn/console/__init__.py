"""The operator console (zh-Hans, server-rendered) and the public join page behind the QR codes."""
