"""A fake of GitHub for the browser_login tests (Python standard library only): the OAuth web application flow of
an OAuth app on github.com and the three REST API endpoints a sign-in reads, on one threaded HTTP server on
127.0.0.1 (a free port), recording every request it gets.

    fake = GitHubFake()
    fake.register_app("gw-main", "gw-main-secret", "http://127.0.0.1:8080/oauth2/callback")
    fake.next_login = "octocat"          # whoever opens /login/oauth/authorize next is signed in as octocat
    ... gatewayd with authorization_endpoint fake.authorize_url, token_endpoint fake.token_url, github_api_url fake.url
    fake.calls_to("/login/oauth/access_token")[-1].form["code_verifier"]
    fake.stop()

What it does, as GitHub documents it (docs.github.com: "Authorizing OAuth apps", "Troubleshooting authorization
request errors", "Troubleshooting OAuth app access token request errors", "Scopes for OAuth apps", REST "Get the
authenticated user", "List email addresses for the authenticated user", "List organizations for the authenticated
user", "Getting started with the REST API" (User-Agent required); changelog 2025-07-14 "PKCE support for OAuth and
GitHub App authentication"):

GET /login/oauth/authorize?client_id&redirect_uri&scope&state&code_challenge&code_challenge_method
    Instead of a login and consent page, `next_login` is signed in and grants the requested scopes (or
    `granted_scopes`, a user who unticked some: "users can edit their scopes"), and the browser is sent (302) to
    redirect_uri?code=...&state=... . The code expires after `code_ttl` seconds (GitHub: 10 minutes) and is good
    for one exchange. An unknown client_id gets a 404 page. A redirect_uri that is not the app's callback URL (same
    scheme, host or a subdomain of it, same port -- any port for a loopback callback given without one -- and the
    callback's path or a subdirectory) sends the browser to the registered callback with
    error=redirect_uri_mismatch. `deny_next` plays a user who clicks Cancel (error=access_denied). PKCE: only S256
    is accepted; a code_challenge binds the code to its verifier. No `next_login`: a 200 login page, and no code.
POST /login/oauth/access_token (form: client_id, client_secret, code, redirect_uri, code_verifier)
    Answers in the format the Accept header asks for (application/json, application/xml, else form-encoded):
    {access_token, token_type: "bearer", scope: "a,b"}. Errors come back the same way, with HTTP 200:
    incorrect_client_credentials, redirect_uri_mismatch, bad_verification_code (unknown, spent, expired, another
    client's code; also, an assumption as GitHub does not document it, a code_verifier that does not match the
    challenge), and with `refuse_unverified_primary` unverified_user_email for a user whose primary email is not
    verified.
GET /user, /user/emails, /user/orgs (Authorization: Bearer <token> or token <token>)
    Every API request needs a User-Agent header (403 otherwise, before anything else). No token: 401 "Requires
    authentication"; an unknown one: 401 "Bad credentials". Answers carry X-OAuth-Scopes and
    X-Accepted-OAuth-Scopes. /user: the profile (`email` is the public email, null when none is set). /user/emails
    needs user:email (or user): 404 otherwise. /user/orgs needs read:org (or write:org, admin:org, user): 403
    otherwise (fine-grained tokens would get an empty list; an OAuth app's token gets a 403); it is paginated
    (per_page default 30, at most 100; Link header).

Faults for tests: `api_status` (every API request answers it), `path_status` ({path: status}), `api_delay`
(seconds before an API answer).
"""

import base64
import hashlib
import json
import secrets
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from xml.sax.saxutils import escape as xml_escape

from harness import LOCALHOST, HeaderLookup

DOCS = "https://docs.github.com"
UA_REFUSAL = ("Request forbidden by administrative rules. Please make sure your request has a User-Agent header "
              f"({DOCS}/rest/using-the-rest-api/getting-started-with-the-rest-api#user-agent). "
              f"Check {DOCS} for other possible causes.\n")
TOKEN_ERRORS = f"{DOCS}/apps/managing-oauth-apps/troubleshooting-oauth-app-access-token-request-errors"
AUTHORIZE_ERRORS = f"{DOCS}/apps/managing-oauth-apps/troubleshooting-authorization-request-errors"

# Scopes that include others ("Scopes for OAuth apps"); a granted list is normalized by dropping included ones.
INCLUDES = {
    "user": {"read:user", "user:email", "user:follow"},
    "admin:org": {"write:org", "read:org"},
    "write:org": {"read:org"},
    "repo": {"repo:status", "repo_deployment", "public_repo", "repo:invite", "security_events"},
    "admin:public_key": {"write:public_key", "read:public_key"},
    "write:public_key": {"read:public_key"},
    "admin:gpg_key": {"write:gpg_key", "read:gpg_key"},
    "write:gpg_key": {"read:gpg_key"},
}
KNOWN_SCOPES = set(INCLUDES) | set().union(*INCLUDES.values()) | {"gist", "notifications", "delete_repo", "workflow",
                                                                    "read:packages", "write:packages", "project",
                                                                    "read:project", "codespace"}


def s256(verifier):
    """RFC 7636 S256: BASE64URL(SHA256(verifier)) without padding."""
    return base64.urlsafe_b64encode(hashlib.sha256(verifier.encode("ascii")).digest()).rstrip(b"=").decode()


def parse_scopes(text):
    """A scope parameter (space- or comma-separated) to the normalized set GitHub keeps: unknown scopes are dropped,
    and so are scopes that another one in the list includes."""
    wanted = {s for s in text.replace(",", " ").split() if s in KNOWN_SCOPES}
    return {s for s in wanted if not any(s in INCLUDES.get(other, ()) for other in wanted if other != s)}


def grants(scopes, needed):
    """Whether a token with `scopes` may do what needs `needed` (directly or by an including scope)."""
    def covered(scope):
        return scope in scopes or any(scope in INCLUDES.get(s, ()) for s in scopes) or any(
            covered(parent) for parent, kids in INCLUDES.items() if scope in kids and parent in scopes)
    return covered(needed)


class FakeUser:
    """A GitHub account. `emails`: [(address, primary, verified)]; `public_email`: what the profile shows (None:
    not set; the fake lets it be anything, to play a spoofed profile)."""

    def __init__(self, login, uid, name=None, public_email=None, emails=(), orgs=()):
        self.login = login
        self.id = uid
        self.name = name
        self.public_email = public_email
        self.emails = list(emails)
        self.orgs = list(orgs)

    def primary_verified(self):
        return any(primary and verified for _, primary, verified in self.emails)

    def profile(self, private):
        p = {"login": self.login, "id": self.id, "node_id": base64.b64encode(f"04:User{self.id}".encode()).decode(),
             "avatar_url": f"https://avatars.github.example/u/{self.id}?v=4", "gravatar_id": "",
             "url": f"https://api.github.example/users/{self.login}", "html_url": f"https://github.example/{self.login}",
             "type": "User", "site_admin": False, "name": self.name, "company": None, "blog": "", "location": None,
             "email": self.public_email, "hireable": None, "bio": None, "twitter_username": None,
             "public_repos": 8, "public_gists": 8, "followers": 20, "following": 0,
             "created_at": "2008-01-14T04:33:35Z", "updated_at": "2024-01-01T00:00:00Z"}
        if private:
            p.update({"private_gists": 0, "total_private_repos": 0, "owned_private_repos": 0, "disk_usage": 1,
                      "collaborators": 0, "two_factor_authentication": True})
        return p


def default_users():
    hubber_orgs = [f"org-{i:02d}" for i in range(1, 36)]  # 35: more than the 30 of /user/orgs' first page
    return {u.login: u for u in [
        FakeUser("octocat", 583231, "The Octocat", None,
                 [("octocat@github.example", True, True), ("octocat@users.noreply.github.example", False, True)],
                 ["obs-team"]),
        # Her primary address is not verified; her profile claims an address she does not own.
        FakeUser("eve", 666, "Eve", "admin@github.example", [("eve@evil.example", True, False)], ["evil-corp"]),
        FakeUser("mona", 1024, "Mona Lisa", "mona@elsewhere.example", [("mona@elsewhere.example", True, True)],
                 ["obs-team", "art"]),
        FakeUser("carol", 4242, "Carol", None, [("carol@other.example", True, True)], []),
        FakeUser("hubber", 7777, "Hubber", None, [("hubber@github.example", True, True)], hubber_orgs),
        FakeUser("orgful", 8888, "Orgful", None, [("orgful@github.example", True, True)],
                 [f"o{i:03d}" for i in range(1, 106)]),  # more than the 100 of the largest page
    ]}


class Call(HeaderLookup):
    """One request the fake received: method, target, path, query and form (dicts of lists), headers in wire order,
    and the status it was answered with."""

    def __init__(self, method, target, headers, body):
        self.method = method
        self.target = target
        split = urllib.parse.urlsplit(target)
        self.path = split.path
        self.query = urllib.parse.parse_qs(split.query, keep_blank_values=True)
        self.headers = headers
        self.body = body
        ctype = (self.header("Content-Type") or "").split(";")[0].strip().lower()
        self.form = (urllib.parse.parse_qs(body.decode("latin-1"), keep_blank_values=True)
                     if ctype == "application/x-www-form-urlencoded" else {})
        self.status = None
        self.answer = b""

    def q(self, name):
        v = self.query.get(name)
        return v[0] if v else None

    def f(self, name):
        v = self.form.get(name)
        return v[0] if v else None

    def __repr__(self):
        return f"<Call {self.method} {self.target} -> {self.status}>"


def _redirect_matches(registered, given):
    r, g = urllib.parse.urlsplit(registered), urllib.parse.urlsplit(given)
    if r.scheme != g.scheme or not g.hostname or g.fragment or ".." in g.path.split("/"):
        return False
    if g.hostname != r.hostname and not g.hostname.endswith("." + r.hostname):
        return False
    default = {"http": 80, "https": 443}.get(r.scheme)
    loopback = r.hostname in ("127.0.0.1", "::1", "localhost")
    if not (loopback and r.port is None) and (g.port or default) != (r.port or default):
        return False
    base = r.path.rstrip("/")
    return g.path == r.path or g.path.startswith(base + "/") or (not base and g.path in ("", "/"))


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "GitHub.com"

    def log_message(self, *args):
        pass

    def do_GET(self):
        self._handle()

    do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = do_GET

    def _handle(self):
        fake = self.server.owner
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        call = Call(self.command, self.path, list(self.headers.items()), body)
        fake._record(call)
        try:
            status, headers, payload = fake._dispatch(call)
        except Exception as e:  # a bug of the fake must show, not hang the gateway
            status, headers, payload = 500, [("Content-Type", "text/plain")], f"fake error: {e!r}\n".encode()
        call.status, call.answer = status, payload
        self.send_response(status)
        for n, v in headers:
            self.send_header(n, v)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(payload)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def handle_error(self, request, client_address):
        pass


class GitHubFake:
    def __init__(self, users=None, host=LOCALHOST):
        self.users = users if users is not None else default_users()
        self.apps = {}  # client_id -> {"secret", "callback"}
        self.lock = threading.Lock()
        self.stop_event = threading.Event()
        self.calls = []
        self.codes = {}   # code -> grant
        self.tokens = {}  # access token -> {"login", "scopes", "client_id"}
        self.reset()
        self.server = _Server((host, 0), _Handler)
        self.server.owner = self
        self.port = self.server.server_address[1]
        self.url = f"http://{host}:{self.port}"
        self.authorize_url = self.url + "/login/oauth/authorize"
        self.token_url = self.url + "/login/oauth/access_token"
        self._thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()

    # --- set-up and control, for tests ---

    def register_app(self, client_id, client_secret, callback_url):
        with self.lock:
            self.apps[client_id] = {"secret": client_secret, "callback": callback_url}

    def reset(self):
        """Forgets recorded calls and puts every knob back (codes and tokens stay valid)."""
        with self.lock:
            self.calls.clear()
            self.next_login = None
            self.deny_next = False
            self.granted_scopes = None
            self.refuse_unverified_primary = False
            self.code_ttl = 600
            self.api_status = None
            self.path_status = {}
            self.api_delay = 0.0

    def calls_to(self, path, method=None):
        with self.lock:
            return [c for c in self.calls if c.path == path and (method is None or c.method == method)]

    def expire_codes(self):
        with self.lock:
            for grant in self.codes.values():
                grant["expires"] = 0

    def stop(self):
        self.stop_event.set()
        self.server.shutdown()
        self.server.server_close()
        self._thread.join(5)

    def _record(self, call):
        with self.lock:
            self.calls.append(call)

    # --- answers ---

    @staticmethod
    def _json(status, obj, extra=()):
        return status, [("Content-Type", "application/json; charset=utf-8"), *extra], json.dumps(obj).encode()

    @staticmethod
    def _html(status, text):
        page = f"<!DOCTYPE html><html><head><title>GitHub</title></head><body><p>{xml_escape(text)}</p></body></html>"
        return status, [("Content-Type", "text/html; charset=utf-8")], page.encode()

    @staticmethod
    def _redirect(url, params):
        sep = "&" if "?" in url else "?"
        return 302, [("Location", url + sep + urllib.parse.urlencode(params)), ("Content-Type", "text/html")], b""

    def _dispatch(self, call):
        if call.path == "/login/oauth/authorize" and call.method in ("GET", "HEAD"):
            return self._authorize(call)
        if call.path == "/login/oauth/access_token" and call.method == "POST":
            return self._access_token(call)
        if call.path in ("/user", "/user/emails", "/user/orgs"):
            return self._api(call)
        return self._json(404, {"message": "Not Found", "documentation_url": f"{DOCS}/rest"})

    def _authorize(self, call):
        with self.lock:
            app = self.apps.get(call.q("client_id") or "")
            login, deny, granted, ttl = self.next_login, self.deny_next, self.granted_scopes, self.code_ttl
        if app is None:
            return self._html(404, "Not Found: no OAuth app has this client_id")
        state = call.q("state")
        redirect_uri = call.q("redirect_uri")

        def error_to_callback(error, description, anchor):
            params = {"error": error, "error_description": description, "error_uri": f"{AUTHORIZE_ERRORS}#{anchor}"}
            if state is not None:
                params["state"] = state
            return self._redirect(redirect_uri if error != "redirect_uri_mismatch" else app["callback"], params)

        if redirect_uri is not None and not _redirect_matches(app["callback"], redirect_uri):
            return error_to_callback("redirect_uri_mismatch",
                                     "The redirect_uri MUST match the registered callback URL for this application.",
                                     "redirect-uri-mismatch")
        redirect_uri = redirect_uri or app["callback"]
        challenge, method = call.q("code_challenge"), call.q("code_challenge_method")
        if method is not None and method != "S256":
            return self._html(400, "code_challenge_method: only S256 is supported")
        if challenge is not None and (method is None or len(challenge) != 43):
            return self._html(400, "code_challenge: a 43-character S256 challenge (with code_challenge_method=S256)")
        if deny:
            return error_to_callback("access_denied", "The user has denied your application access.",
                                     "access-denied")
        if login is None:
            return self._html(200, "Sign in to GitHub to continue")
        scopes = parse_scopes(" ".join(granted) if granted is not None else (call.q("scope") or ""))
        code = secrets.token_hex(10)
        with self.lock:
            self.codes[code] = {"client_id": call.q("client_id"), "redirect_uri": redirect_uri, "login": login,
                                "scopes": scopes, "challenge": challenge, "expires": time.monotonic() + ttl,
                                "used": False}
        params = {"code": code}
        if state is not None:
            params["state"] = state
        return self._redirect(redirect_uri, params)

    def _token_answer(self, call, fields):
        accept = ", ".join(v for n, v in call.headers if n.lower() == "accept").lower()
        if "application/json" in accept:
            return self._json(200, fields)
        if "application/xml" in accept:
            inner = "".join(f"<{k}>{xml_escape(str(v))}</{k}>" for k, v in fields.items())
            return 200, [("Content-Type", "application/xml; charset=utf-8")], f"<OAuth>{inner}</OAuth>".encode()
        return (200, [("Content-Type", "application/x-www-form-urlencoded; charset=utf-8")],
                urllib.parse.urlencode(fields).encode())

    def _token_error(self, call, error, description, anchor):
        return self._token_answer(call, {"error": error, "error_description": description,
                                         "error_uri": f"{TOKEN_ERRORS}#{anchor}"})

    def _access_token(self, call):
        client_id, secret, code = call.f("client_id"), call.f("client_secret"), call.f("code")
        with self.lock:
            app = self.apps.get(client_id or "")
            refuse_unverified = self.refuse_unverified_primary
            if app is None or secret is None or not secrets.compare_digest(secret.encode(), app["secret"].encode()):
                grant = None
                bad_client = True
            else:
                bad_client = False
                grant = self.codes.get(code or "")
                fresh = grant is not None and not grant["used"] and grant["expires"] > time.monotonic()
                if grant is not None and grant["client_id"] == client_id:
                    grant["used"] = True  # one exchange per code, whatever its outcome
                if not fresh or grant["client_id"] != client_id:
                    grant = None
        if bad_client:
            return self._token_error(call, "incorrect_client_credentials",
                                     "The client_id and/or client_secret passed are incorrect.",
                                     "incorrect-client-credentials")
        if grant is None:
            return self._token_error(call, "bad_verification_code", "The code passed is incorrect or expired.",
                                     "bad-verification-code")
        given_redirect = call.f("redirect_uri")
        if given_redirect is not None and given_redirect != grant["redirect_uri"]:
            return self._token_error(call, "redirect_uri_mismatch",
                                     "The redirect_uri MUST match the registered callback URL for this application.",
                                     "redirect-uri-mismatch")
        if grant["challenge"] is not None:
            verifier = call.f("code_verifier")
            if verifier is None or not secrets.compare_digest(s256(verifier), grant["challenge"]):
                return self._token_error(call, "bad_verification_code",
                                         "The code_verifier does not match the code_challenge.",
                                         "bad-verification-code")
        user = self.users[grant["login"]]
        if refuse_unverified and not user.primary_verified():
            return self._token_error(call, "unverified_user_email", "The user must have a verified primary email.",
                                     "unverified-user-email")
        token = "gho_" + secrets.token_urlsafe(27).replace("-", "a").replace("_", "b")[:36]
        with self.lock:
            self.tokens[token] = {"login": grant["login"], "scopes": set(grant["scopes"]), "client_id": client_id}
        return self._token_answer(call, {"access_token": token, "token_type": "bearer",
                                         "scope": ",".join(sorted(grant["scopes"]))})

    def _api(self, call):
        if not (call.header("User-Agent") or "").strip():
            return 403, [("Content-Type", "text/plain; charset=utf-8")], UA_REFUSAL.encode()
        with self.lock:
            delay, status = self.api_delay, self.path_status.get(call.path, self.api_status)
        if delay:
            self.stop_event.wait(delay)
        if status is not None:
            return self._json(status, {"message": "Server Error"} if status >= 500 else {"message": "Fault"})
        if call.method not in ("GET", "HEAD"):
            return self._json(404, {"message": "Not Found", "documentation_url": f"{DOCS}/rest"})
        auth = call.header("Authorization")
        if not auth:
            return self._json(401, {"message": "Requires authentication", "documentation_url": f"{DOCS}/rest",
                                    "status": "401"})
        scheme, _, value = auth.partition(" ")
        with self.lock:
            entry = self.tokens.get(value.strip()) if scheme.lower() in ("bearer", "token") else None
        if entry is None:
            return self._json(401, {"message": "Bad credentials", "documentation_url": f"{DOCS}/rest",
                                    "status": "401"})
        user, scopes = self.users[entry["login"]], entry["scopes"]
        oauth = [("X-OAuth-Scopes", ", ".join(sorted(scopes)))]
        if call.path == "/user":
            return self._json(200, user.profile(private=grants(scopes, "user")),
                              oauth + [("X-Accepted-OAuth-Scopes", "")])
        if call.path == "/user/emails":
            accepted = oauth + [("X-Accepted-OAuth-Scopes", "user, read:user, user:email")]
            if not grants(scopes, "user:email"):
                return self._json(404, {"message": "Not Found", "documentation_url":
                                        f"{DOCS}/rest/users/emails#list-email-addresses-for-the-authenticated-user",
                                        "status": "404"}, accepted)
            listing = [{"email": a, "primary": p, "verified": v,
                        "visibility": "public" if a == user.public_email else ("private" if p else None)}
                       for a, p, v in user.emails]
            return self._json(200, listing, accepted)
        # /user/orgs
        accepted = oauth + [("X-Accepted-OAuth-Scopes", "admin:org, read:org, repo, user, write:org")]
        if not (grants(scopes, "read:org") or grants(scopes, "user")):
            return self._json(403, {"message": "You need at least read:org scope or user scope to list your "
                                               "organizations.", "documentation_url":
                                    f"{DOCS}/rest/orgs/orgs#list-organizations-for-the-authenticated-user",
                                    "status": "403"}, accepted)
        try:
            per_page = max(1, min(100, int(call.q("per_page") or 30)))
            page = max(1, int(call.q("page") or 1))
        except ValueError:
            per_page, page = 30, 1
        orgs = user.orgs[(page - 1) * per_page: page * per_page]
        body = [{"login": o, "id": 10000 + user.orgs.index(o), "url": f"https://api.github.example/orgs/{o}",
                 "description": None} for o in orgs]
        last = max(1, -(-len(user.orgs) // per_page))
        links = []
        if page < last:
            links.append(f'<{self.url}/user/orgs?per_page={per_page}&page={page + 1}>; rel="next"')
            links.append(f'<{self.url}/user/orgs?per_page={per_page}&page={last}>; rel="last"')
        if page > 1:
            links.append(f'<{self.url}/user/orgs?per_page={per_page}&page=1>; rel="first"')
            links.append(f'<{self.url}/user/orgs?per_page={per_page}&page={page - 1}>; rel="prev"')
        return self._json(200, body, accepted + ([("Link", ", ".join(links))] if links else []))
