"""The vendor-neutral media core: shared live streams and the encodings clients need.

It knows no vendor: backends feed it H.264 access units and AAC frames, and clients (eufy
connections, later RTSP players and browsers) subscribe to it.
"""
