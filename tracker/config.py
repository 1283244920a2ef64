"""Every setting the tracker reads, with a safe default and the reason for it.

Layers, later ones win: these defaults, then ``instance/config.py``, then environment variables
prefixed ``TRACKER_`` (``DATABASE_URL`` too), then the mapping a test passes to ``create_app``.
"""
from __future__ import annotations

# Overridden in production through instance/config.py or TRACKER_SECRET_KEY; a fixed dev key keeps
# `make run` sessions alive across restarts. Outside debug, testing or DEVELOPMENT the app refuses to
# start with this key or an empty one (everything signed with it could be forged).
SECRET_KEY = "dev-only-change-me"
DEVELOPMENT = False

# None means "a SQLite file in the instance folder", resolved by create_app once the folder is known.
SQLALCHEMY_DATABASE_URI: str | None = None
SQLALCHEMY_ENGINE_OPTIONS: dict = {}
# Seconds a SQLite writer waits for the lock before giving up; uploads are short, so waiting beats failing.
SQLITE_BUSY_TIMEOUT = 30

# Where report form definitions live; the plans' data files sit in its subfolders.
REPORT_FORMS_DIR: str | None = None

# Uploads: Flask answers 413 past this size before any of our code reads the body.
MAX_CONTENT_LENGTH = 10 * 1024 * 1024 + 64 * 1024
MAX_UPLOAD_BYTES = 10 * 1024 * 1024
# Multipart bombs: Werkzeug refuses bodies with more parts than this.
MAX_FORM_PARTS = 100
# Request bodies are read in full before the app runs (tracker.bodies): a client silent for
# BODY_IDLE_TIMEOUT seconds, or slower than BODY_READ_TIMEOUT for the whole body, gets 408.
BODY_IDLE_TIMEOUT = 20.0
BODY_READ_TIMEOUT = 120.0
# Upload limits per unit and plan: accepted versions and refused files in the last hour count against
# the rate; the stored bytes of every version count against the quota. Shared by every app server
# through the database.
UPLOAD_RATE = "20 per hour"
UPLOAD_QUOTA_BYTES = 200 * 1024 * 1024
# Raised limits for named units, {"unit code": {"rate": "...", "quota_bytes": N}}: the load test's own
# accounts, or a unit that legitimately resubmits a lot.
UPLOAD_LIMIT_OVERRIDES: dict = {}
# Receipts are coalesced: one email per unit and plan within this many seconds, naming every version.
RECEIPT_COALESCE_SECONDS = 180
# The parse runs in a warm child process under these limits (seconds, bytes of address space).
PARSE_TIMEOUT = 20.0
# The signed report (PDF) kept beside the data return: its size and page limits, and the PEM files of
# the certificate authorities whose digital signatures count as trusted (the government CA's roots).
# Signatures are checked offline: nothing is fetched, revocation is not checked.
SIGNED_REPORT_MAX_BYTES = 10 * 1024 * 1024
SIGNED_REPORT_MAX_PAGES = 100
SIGNATURE_TRUST_ROOTS: list[str] = []
PARSE_MEMORY_LIMIT = 1536 * 1024 * 1024

# Password of the blank forms' sheet protection. Empty: one derived from SECRET_KEY (each installation its
# own); staff and admins see it on the forms page. It keeps honest officers on the path, nothing more.
SHEET_PASSWORD = ""

# Reverse proxies in front of the app (0: none). Behind nginx set 1, so the login limit and the audit
# log see the client's address and links keep the https scheme.
PROXY_FIX = 0
# Absolute links in emails need the public address; request-less CLI runs cannot guess it.
PUBLIC_BASE_URL = "http://127.0.0.1:5000"

# Mail: with no MAIL_SERVER, messages are written as .eml files under instance/outbox/.
MAIL_SERVER: str | None = None
MAIL_PORT = 25
MAIL_USE_TLS = False
MAIL_USE_SSL = False
MAIL_USERNAME: str | None = None
MAIL_PASSWORD: str | None = None
MAIL_DEFAULT_SENDER = "Sở LĐTBXH Bắc Giang <no-reply@sldtbxh.bacgiang.gov.vn>"
MAIL_TIMEOUT = 10.0
# Mail queued by a request is sent after its commit: "thread" in a background thread of the web process
# (the answer never waits on SMTP), "inline" by the request itself after the commit (tests), "off"
# leaves it to `flask send-reminders`.
MAIL_SEND_AFTER_REQUEST = "thread"
# Flask-Mail's option drops letters such as "Đ" from attachment names; keep it off.
MAIL_ASCII_ATTACHMENTS = False
# A failed message is retried by later runs with backoff, then marked failed after this many tries.
MAIL_MAX_ATTEMPTS = 5
DEPARTMENT_EMAIL = "tuyetot_sldtbxh@bacgiang.gov.vn"
MAIL_SUBJECT_PREFIX = "[Sở LĐTBXH Bắc Giang]"

# Sessions: the cookie never reaches scripts; Secure only where HTTPS terminates in front of us.
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
SESSION_COOKIE_SECURE = False
REMEMBER_COOKIE_HTTPONLY = True
PERMANENT_SESSION_LIFETIME = 8 * 3600
WTF_CSRF_TIME_LIMIT = None  # a form left open over lunch must still submit

# Login throttling (Flask-Limiter): memory per process by default; redis://... shares it between workers.
RATELIMIT_STORAGE_URI = "memory://"
# Failed logins only (a successful one costs nothing): RATELIMIT_LOGIN per client address, whatever the
# account; RATELIMIT_LOGIN_ACCOUNT per account, whatever the address (guessing from many addresses).
# RATELIMIT_LOGIN also caps every forgot-password request per address.
RATELIMIT_LOGIN = "10 per minute"
RATELIMIT_LOGIN_ACCOUNT = "5 per 15 minutes"
RATELIMIT_ENABLED = True
RATELIMIT_HEADERS_ENABLED = False
PASSWORD_RESET_MAX_AGE = 3600
# Werkzeug hash method; tests use a cheap one so hundreds of accounts do not cost minutes.
PASSWORD_HASH_METHOD = "scrypt"

# The intake mailbox (ingest-mail): IMAP over TLS ("ssl", port 993) or STARTTLS ("starttls", 143); "none"
# only to a loopback address. Every socket operation times out, so a silent server cannot hang cron.
INTAKE_IMAP_HOST: str | None = None
INTAKE_IMAP_PORT: int | None = None
INTAKE_IMAP_USER: str | None = None
INTAKE_IMAP_PASSWORD: str | None = None
INTAKE_IMAP_FOLDER = "INBOX"
# Processed messages are flagged with the keyword and, when this is set, moved (or copied) there.
INTAKE_IMAP_PROCESSED_FOLDER: str | None = None
INTAKE_IMAP_KEYWORD = "$TrackerProcessed"
INTAKE_IMAP_SECURITY = "ssl"
INTAKE_IMAP_TIMEOUT = 30.0
# A private CA's certificate file for the mail server ("" means the system's trust store).
INTAKE_IMAP_CAFILE = ""
# Larger messages are listed with the reason and never downloaded whole.
INTAKE_MAX_MESSAGE_BYTES = 40 * 1024 * 1024
