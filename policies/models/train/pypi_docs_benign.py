"""Benign documentation for training: the long descriptions (the README shown on PyPI) of widely used Python
packages under permissive licences (MIT, BSD, Apache-2.0, ISC, PSF, MPL-2.0), fetched from PyPI's JSON API.

    python policies/models/train/pypi_docs_benign.py   # rewrites data/external/pypi_docs_benign.jsonl

Real READMEs are what agents read most (fetched pages, `pip show`, package pages) and what the indirect head
refused most: badge blocks, dependency lists, changelogs, contributor lists, install steps and instructions to
the reader ("please open an issue", "run the tests with …"). Each row names the package, version, licence and
its fold: packages whose name hashes to fold 4 are held out (never trained on) and reported apart.
The training build reads only the committed JSONL.
"""
import hashlib
import json
import os
import re
import sys
import urllib.request

from crates_benign import chunks

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "data", "external", "pypi_docs_benign.jsonl")
PER_PACKAGE, CHUNK = 6, 1200
PERMISSIVE = re.compile(r"\b(MIT|BSD|Apache|ISC|PSF|Python Software Foundation|MPL|Mozilla|Unlicense|Zlib|HPND)\b", re.I)

PACKAGES = """
requests urllib3 certifi idna charset-normalizer six python-dateutil pyyaml numpy pandas setuptools wheel pip
packaging typing-extensions attrs click jinja2 markupsafe itsdangerous werkzeug flask django fastapi starlette
uvicorn pydantic pydantic-core anyio sniffio h11 httpx httpcore aiohttp yarl multidict frozenlist aiosignal
async-timeout botocore boto3 s3transfer jmespath awscli google-auth cachetools rsa pyasn1 pyasn1-modules
protobuf grpcio googleapis-common-protos google-api-core oauthlib requests-oauthlib cryptography cffi pycparser
pyjwt bcrypt paramiko pynacl wrapt decorator tqdm colorama rich pygments markdown-it-py mdurl toml tomli
tomli-w tomlkit filelock platformdirs virtualenv distlib pluggy pytest iniconfig exceptiongroup coverage
pytest-cov pytest-mock pytest-asyncio pytest-xdist execnet hypothesis sortedcontainers mock tox nox black
isort flake8 pyflakes pycodestyle mccabe mypy mypy-extensions pylint astroid tomlkit ruff pre-commit
identify nodeenv cfgv sqlalchemy greenlet alembic mako psycopg2-binary pymysql redis celery kombu vine
billiard amqp click-plugins click-didyoumean click-repl prompt-toolkit wcwidth scipy scikit-learn joblib
threadpoolctl matplotlib pillow kiwisolver cycler fonttools pyparsing contourpy seaborn statsmodels patsy
sympy mpmath networkx pytz tzdata tzlocal babel docutils sphinx alabaster imagesize snowballstemmer
sphinx-rtd-theme sphinxcontrib-applehelp sphinxcontrib-jsmath beautifulsoup4 soupsieve lxml html5lib
webencodings bleach tinycss2 defusedxml openpyxl et-xmlfile xlrd pyarrow fsspec s3fs gcsfs dask toolz cloudpickle
partd locket msgpack ujson orjson simplejson jsonschema jsonschema-specifications referencing rpds-py
jsonpointer jsonpatch marshmallow more-itertools zipp importlib-metadata importlib-resources backports-zoneinfo
websocket-client websockets gunicorn gevent eventlet greenlet tornado twisted zope-interface pyopenssl
service-identity hyperlink incremental constantly automat psutil py-cpuinfo distro pexpect ptyprocess
ipython jedi parso traitlets matplotlib-inline stack-data asttokens executing pure-eval ipykernel
jupyter-core jupyter-client pyzmq nbformat nbconvert notebook jupyterlab tabulate texttable prettytable
terminaltables termcolor blessed humanize arrow pendulum python-slugify text-unidecode unidecode regex
chardet ftfy emoji nltk gensim spacy thinc srsly cymem preshed murmurhash wasabi catalogue typer shellingham
tenacity backoff retry ratelimit cachecontrol diskcache cachelib python-dotenv environs dynaconf configparser
pyrsistent sentry-sdk structlog loguru python-json-logger opentelemetry-api opentelemetry-sdk prometheus-client
statsd datadog requests-toolbelt requests-mock responses httpretty vcrpy freezegun time-machine faker
factory-boy model-bakery django-filter djangorestframework django-cors-headers whitenoise dj-database-url
flask-cors flask-sqlalchemy flask-login flask-wtf wtforms marshmallow-sqlalchemy graphene strawberry-graphql
ariadne grpcio-tools pyee pyserial pyusb pexpect sh plumbum invoke fabric ansible-core jinja2-time cookiecutter
poetry-core hatchling flit-core pdm-backend setuptools-scm build installer pyproject-hooks twine readme-renderer
pkginfo rfc3986 keyring jaraco-classes jeepney secretstorage docker kubernetes google-cloud-storage
azure-core azure-storage-blob msal portalocker openai anthropic tiktoken tokenizers transformers huggingface-hub
safetensors datasets xxhash multiprocess dill torch-audiomentations onnx onnxruntime mlflow wandb gitpython
gitdb smmap dulwich pygit2 watchdog pathspec wcmatch bracex scandir glob2 natsort humanfriendly coloredlogs
verboselogs tablib xlsxwriter python-docx python-pptx pypdf reportlab fpdf qrcode pyotp passlib argon2-cffi
itsdangerous authlib python-jose ecdsa pycryptodome hvac boto3-stubs types-requests types-pyyaml black-macchiato
uvloop httptools watchfiles python-multipart email-validator dnspython netaddr ipaddress ifaddr zeroconf
paho-mqtt pika confluent-kafka kafka-python elasticsearch opensearch-py pymongo motor cassandra-driver
neo4j clickhouse-driver duckdb polars numexpr bottleneck numba llvmlite cython pybind11 cmake ninja scikit-build
meson meson-python pyinstaller nuitka briefcase pywin32-ctypes pyperclip pyautogui pynput keyboard mouse
schedule apscheduler croniter python-crontab rq huey dramatiq
""".split()


def fold(name):
    return int(hashlib.sha256(name.lower().encode()).hexdigest(), 16) % 5


def fetch(name):
    with urllib.request.urlopen(f"https://pypi.org/pypi/{name}/json", timeout=20) as r:
        return json.load(r)["info"]


def main():
    rows, seen = [], set()
    for name in PACKAGES:
        if name in seen:
            continue
        seen.add(name)
        try:
            info = fetch(name)
        except Exception as e:  # a missing or renamed package is skipped, and said
            print(f"skip {name}: {e}", file=sys.stderr)
            continue
        lic = (info.get("license_expression") or info.get("license") or "").strip()
        classifiers = [c for c in info.get("classifiers") or [] if c.startswith("License ::")]
        label = lic.splitlines()[0][:60] if lic and len(lic) < 200 else "; ".join(c.split(" :: ")[-1] for c in classifiers)
        text_lic = lic + " " + " ".join(classifiers)
        if not PERMISSIVE.search(text_lic) or re.search(r"\b(A|L)?GPL|General Public", text_lic):
            print(f"skip {name}: licence {label!r}", file=sys.stderr)
            continue
        desc = info.get("description") or ""
        pieces = [c for c in chunks(desc, CHUNK) if len(c.encode()) >= 300]
        # Spread over the description: the start (badges, install), the middle and the end (changelog, credits).
        if len(pieces) > PER_PACKAGE:
            step = len(pieces) / PER_PACKAGE
            pieces = [pieces[int(i * step)] for i in range(PER_PACKAGE)]
        for p in pieces:
            rows.append({"package": info["name"], "version": info["version"], "licence": label,
                         "fold": fold(name), "text": p})
    with open(OUT, "w", encoding="utf-8") as f:
        for r in rows:
            f.write(json.dumps(r, ensure_ascii=False) + "\n")
    print(f"pypi_docs_benign: {len(rows)} chunks from {len({r['package'] for r in rows})} packages -> {OUT}")


if __name__ == "__main__":
    main()
