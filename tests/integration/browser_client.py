"""A browser as the sign-in tests need one: a cookie jar and an opener that follows no redirect by itself, so that
every hop of a sign-in is seen and asserted."""

import http.cookiejar
import ssl
import urllib.error
import urllib.parse
import urllib.request


class Browser:
    """A cookie jar and an opener that follows no redirect: fetch() gives (status, headers, body text)."""

    def __init__(self, ca_file):
        self.jar = http.cookiejar.CookieJar()

        class NoRedirect(urllib.request.HTTPRedirectHandler):
            def redirect_request(self, *args, **kwargs):
                return None

        self.opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(self.jar), NoRedirect(),
                                                  urllib.request.HTTPSHandler(
                                                      context=ssl.create_default_context(cafile=ca_file)))

    def fetch(self, url, form=None, headers=None, method=None):
        data = urllib.parse.urlencode(form).encode() if form is not None else None
        h = {"Accept": "text/html,application/xhtml+xml"}
        h.update(headers or {})
        req = urllib.request.Request(url, data=data, headers=h, method=method)
        try:
            with self.opener.open(req, timeout=10) as resp:
                return resp.status, resp.headers, resp.read().decode("utf-8", "replace")
        except urllib.error.HTTPError as e:
            with e:
                return e.code, e.headers, e.read().decode("utf-8", "replace")

    def start_sign_in(self, url):
        """Asks for a page without a session; returns the `state` of the redirect to the provider."""
        status, headers, body = self.fetch(url)
        assert status == 302, f"{url}: {status} {body[:300]}"
        return urllib.parse.parse_qs(urllib.parse.urlsplit(headers["Location"]).query)["state"][0]

    def cookie(self, name):
        return next((c.value for c in self.jar if c.name == name), None)

    def cookies(self):
        return {c.name: c.value for c in self.jar}
