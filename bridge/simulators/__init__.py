"""Faithful fakes of the vendor devices and clouds, built from their published APIs.

They are product code: demo mode runs them in-process and the tests run the bridge against
them over real sockets. Each can also run alone (``eufy-bridge simulate ...``).
"""
