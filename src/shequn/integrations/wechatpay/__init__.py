"""WeChat Pay API v3: request signing, notification verification and resource decryption.

Written against the published rules (pay.weixin.qq.com, interface-rules/signature-verification;
the official Go SDK's validator): SHA256withRSA over ``ts\\nnonce\\nbody\\n`` of the *raw* body,
a 300 s replay window, ``WECHATPAY/SIGNTEST/`` probes refused, the verifying key chosen by
``Wechatpay-Serial`` (a certificate serial or a ``PUB_KEY_ID_…`` public-key id, both during the
migration), and AEAD_AES_256_GCM with the APIv3 key for the resource.
"""
