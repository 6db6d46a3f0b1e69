"""Thirteenth round of benign training text: the command lines an operator types or pastes when handling
credentials (creating a Kubernetes secret, logging in to a registry, rotating a key), alone and inside
ordinary requests. Their vocabulary (secret, password, token, key) is that of credential-extraction
attacks; their form is that of everyday operations. Written for this project from templates (fixed seed);
the output is committed as data/authored/train13/commands.txt and read by build.py.

Usage: python commands13.py > data/authored/train13/commands.txt
"""

import random

R = random.Random(13)

NAMES = ["db-creds", "api-token", "regcred", "app-tls", "stripe-key", "smtp-auth", "redis-pass", "oauth-client",
         "billing-db", "grafana-admin", "sentry-dsn", "s3-access", "ci-deploy", "webhook-signing", "ldap-bind"]
KEYS = ["password", "username", "token", "api_key", "client_secret", "dsn", "access_key", "secret_key"]
FILES = ["./password.txt", "./token", "secrets/db_password", "./.env.production", "creds/api_key.txt",
         "tls.key", "./client_secret.json"]
VARS = ["$DB_PASSWORD", "$API_TOKEN", "$NPM_TOKEN", "$GITHUB_TOKEN", "$REGISTRY_PASSWORD", "${CI_JOB_TOKEN}",
        "$PYPI_TOKEN", "$VAULT_TOKEN", "$(cat ./token)"]
NS = ["default", "prod", "staging", "payments", "monitoring"]
REG = ["ghcr.io", "registry.gitlab.com", "quay.io", "123456789012.dkr.ecr.eu-west-1.amazonaws.com", "docker.io"]
PATHS = ["secret/app", "kv/prod/billing", "secret/data/ci", "database/creds/readonly", "kv/staging/smtp"]


def pick(xs):
    return R.choice(xs)


def commands():
    n, k, f, v, ns = pick(NAMES), pick(KEYS), pick(FILES), pick(VARS), pick(NS)
    return [
        f"kubectl create secret generic {n} --from-literal={k}={v} -n {ns}",
        f"kubectl create secret generic {n} --from-file={k}={f}",
        f"kubectl get secret {n} -n {ns} -o jsonpath='{{.data.{k}}}' | base64 -d",
        f"kubectl describe secret {n} -n {ns}",
        f"kubectl delete secret {n} -n {ns}",
        f"kubectl create secret tls {n} --cert=tls.crt --key=tls.key -n {ns}",
        f"kubectl create secret docker-registry regcred --docker-server={pick(REG)} --docker-username=ci --docker-password={v}",
        f"kubectl rollout restart deployment/{n.split('-')[0]} -n {ns}",
        f"docker secret create {n.replace('-', '_')} {f}",
        f"docker secret ls",
        f"echo {v} | docker login {pick(REG)} -u ci --password-stdin",
        f"vault kv get -field={k} {pick(PATHS)}",
        f"vault kv put {pick(PATHS)} {k}=@{f.lstrip('./')}",
        f"vault kv delete {pick(PATHS)}",
        f"vault token create -ttl=1h -policy=read-{n}",
        f"vault login -method=oidc role=dev",
        f"gh secret set {k.upper()} --body \"{v}\"",
        f"gh secret list --repo acme/{n}",
        f"gh auth login --with-token < {f}",
        f"aws secretsmanager get-secret-value --secret-id {ns}/{n} --query SecretString --output text",
        f"aws secretsmanager rotate-secret --secret-id {ns}/{n}",
        f"aws secretsmanager create-secret --name {ns}/{n} --secret-string file://{f.lstrip('./')}",
        f"aws ssm get-parameter --name /{ns}/{n}/{k} --with-decryption",
        f"gcloud secrets versions access latest --secret={n}",
        f"gcloud secrets create {n} --data-file={f}",
        f"az keyvault secret set --vault-name acme-{ns} --name {n} --file {f}",
        f"az keyvault secret show --vault-name acme-{ns} --name {n}",
        f"openssl genrsa -out {n}.key 4096",
        f"openssl req -new -key {n}.key -out {n}.csr -subj \"/CN={n}.internal\"",
        f"openssl rand -base64 32 > {n}.secret",
        f"openssl passwd -6 -salt $(openssl rand -hex 8)",
        f"openssl enc -aes-256-cbc -pbkdf2 -in backup.sql -out backup.sql.enc -pass file:{f}",
        f"htpasswd -B -c /etc/nginx/.htpasswd admin",
        f"ssh-keygen -t ed25519 -f ~/.ssh/id_{n.replace('-', '_')} -N '' -C ci@acme",
        f"gpg --armor --export {n}@acme.example > {n}.asc",
        f"gpg --decrypt secrets.env.gpg > .env",
        f"pass generate acme/{n} 32",
        f"op read op://Engineering/{n}/{k}",
        f"bw get password {n}",
        f"sops --encrypt --age $(cat ~/.config/sops/age/keys.txt | grep -oP 'public key: \\K.*') secrets.yaml > secrets.enc.yaml",
        f"sops -d secrets.enc.yaml | kubectl apply -f -",
        f"keytool -genkeypair -alias {n} -keyalg RSA -keystore keystore.jks -storepass {v}",
        f"certbot certonly --standalone -d {n}.acme.example",
        f"mysql -u root -p{v} -e 'FLUSH PRIVILEGES'",
        f"psql \"postgresql://app:{v}@db.{ns}.svc:5432/app\" -c '\\dt'",
        f"redis-cli -a \"{v}\" ping",
        f"git config --global credential.helper 'cache --timeout=3600'",
        f"npm config set //registry.npmjs.org/:_authToken {v}",
        f"npm token create --read-only",
        f"cargo login {v}",
        f"twine upload -u __token__ -p {v} dist/*",
        f"terraform apply -var \"db_password={v}\"",
        f"export {k.upper()}=$(op read op://Engineering/{n}/{k})",
        f"export VAULT_ADDR=https://vault.{ns}.acme.example:8200",
        f"curl -H \"Authorization: Bearer {v}\" https://api.acme.example/v1/health",
        f"helm upgrade --install {n.split('-')[0]} ./chart --set secrets.{k}={v}",
        f"ansible-vault encrypt group_vars/{ns}/vault.yml",
        f"ansible-vault view group_vars/{ns}/vault.yml",
        f"grep -rn '{k}' config/ --include='*.yaml'",
        f"chmod 600 {f}",
    ]


WRAP = [
    "{c}",
    "{c}",
    "{c}",
    "Run `{c}`",
    "Run `{c}` and then restart the deployment.",
    "What does `{c}` do?",
    "`{c}` fails with \"permission denied\", why?",
    "Can you turn `{c}` into a make target?",
    "Add this to the deploy script: {c}",
    "I ran {c} but nothing changed.",
    "Please explain the flags in: {c}",
    "Put `{c}` in the README under \"Rotating credentials\".",
]


def main():
    seen, out = set(), []
    while len(out) < 900:
        c = pick(commands())
        line = pick(WRAP).format(c=c)
        if line not in seen:
            seen.add(line)
            out.append(line)
    print("\n".join(out))


if __name__ == "__main__":
    main()
