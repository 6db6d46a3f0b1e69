#!/bin/sh
# The Secrets deploy/asg.yaml expects, for clusters without Helm or cert-manager:
#  * asg-system/asg-injector-tls: the webhook's serving certificate (and its CA);
#  * <ns>/asg-ca: one interception CA (ECDSA P-256, 10 years), copied into every namespace given;
#  * <ns>/asg-admin: a random operator key per namespace (the sidecars' admin API).
# Prints the Secrets as YAML on stdout, and on stderr the command that puts the webhook's CA
# into the MutatingWebhookConfiguration.
#   usage: deploy/certs.sh agents [more namespaces...] | kubectl apply -f -
# Keep the CA private key safe: anyone holding it can impersonate any host to the agents.
set -eu
[ $# -ge 1 ] || { echo "usage: $0 NAMESPACE... (the namespaces asg injects into)" >&2; exit 2; }
svc=${ASG_INJECTOR_SERVICE:-asg-injector}
ns=${ASG_INJECTOR_NAMESPACE:-asg-system}
days=3650
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
ec="-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes"

# Webhook: a private CA and a serving certificate for <svc>.<ns>.svc.
openssl req -x509 $ec -days $days -subj "/CN=$svc CA" -keyout "$dir/wca.key" -out "$dir/wca.crt" \
  -addext "basicConstraints=critical,CA:TRUE,pathlen:0" -addext "keyUsage=critical,keyCertSign" 2>/dev/null
openssl req $ec -subj "/CN=$svc.$ns.svc" -keyout "$dir/tls.key" -out "$dir/tls.csr" 2>/dev/null
cat > "$dir/tls.ext" <<EXT
basicConstraints=critical,CA:FALSE
keyUsage=critical,digitalSignature
extendedKeyUsage=serverAuth
subjectAltName=DNS:$svc,DNS:$svc.$ns,DNS:$svc.$ns.svc,DNS:$svc.$ns.svc.cluster.local
EXT
openssl x509 -req -in "$dir/tls.csr" -CA "$dir/wca.crt" -CAkey "$dir/wca.key" -CAcreateserial \
  -days $days -extfile "$dir/tls.ext" -out "$dir/tls.crt" 2>/dev/null

# The interception CA the sidecars sign with (path length 0: leaves only).
openssl req -x509 $ec -days $days -subj "/CN=asg interception CA/O=Agent Security Gateway" \
  -keyout "$dir/ca.key" -out "$dir/ca.crt" \
  -addext "basicConstraints=critical,CA:TRUE,pathlen:0" \
  -addext "keyUsage=critical,keyCertSign,cRLSign,digitalSignature" 2>/dev/null

b64() { base64 -w0 < "$1"; }
secret() { # name namespace type key=file...
  name=$1 namespace=$2 type=$3
  shift 3
  printf -- '---\napiVersion: v1\nkind: Secret\ntype: %s\nmetadata:\n  name: %s\n  namespace: %s\n  labels:\n    app.kubernetes.io/name: asg\ndata:\n' \
    "$type" "$name" "$namespace"
  for kv in "$@"; do
    printf '  %s: %s\n' "${kv%%=*}" "$(b64 "${kv#*=}")"
  done
}

secret "$svc-tls" "$ns" kubernetes.io/tls tls.crt="$dir/tls.crt" tls.key="$dir/tls.key" ca.crt="$dir/wca.crt"
for target in "$@"; do
  secret asg-ca "$target" kubernetes.io/tls tls.crt="$dir/ca.crt" tls.key="$dir/ca.key" ca.crt="$dir/ca.crt"
  head -c 30 /dev/urandom | base64 | tr -d '\n/+=' > "$dir/key-$target"
  secret asg-admin "$target" Opaque operator-key="$dir/key-$target"
done

bundle=$(b64 "$dir/wca.crt")
cat >&2 <<MSG
# Then tell the API server which CA signs the webhook:
kubectl patch mutatingwebhookconfiguration asg-sidecar-injector --type=json -p='[
  {"op":"add","path":"/webhooks/0/clientConfig/caBundle","value":"$bundle"},
  {"op":"add","path":"/webhooks/1/clientConfig/caBundle","value":"$bundle"}]'
MSG
