"""The station's own HTML5 viewer (``/bha-api/view.html``), which integrations link to.

The page shows the live MJPEG stream of ``video.cgi``.  It is static: the credentials a viewer
came with (a session id, or ``http-user``/``http-password``) are handed on to the stream by the
page's script from the browser's own address bar, so the station never writes them into HTML.
Browsers that authenticated with a header send it again by themselves.
"""

VIEW_HTML = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>DoorBird</title>
<style>
  html, body { margin: 0; height: 100%; background: #000; }
  img { display: block; width: 100%; height: 100%; object-fit: contain; }
</style>
</head>
<body>
<img id="live" alt="DoorBird live video">
<script>
  const given = new URLSearchParams(location.search);
  const passed = new URLSearchParams();
  for (const name of ["sessionid", "http-user", "http-password"]) {
    if (given.has(name)) passed.set(name, given.get(name));
  }
  const query = passed.toString();
  document.getElementById("live").src = "video.cgi" + (query ? "?" + query : "");
</script>
</body>
</html>
"""
