#!/usr/bin/env bash
# Print the ansible-vault password of one inventory, kept in `pass` (the standard Unix password manager).
# Ansible passes --vault-id to a password script whose name ends in -client, so
#   ansible-playbook -i inventories/production --vault-id production@tools/vault-pass-client.sh site.yml
# runs `vault-pass-client.sh --vault-id production`, which prints the first line of the pass entry
# operativos/ansible-vault/production. OPERATIVOS_VAULT_PASS_FOLDER sets another folder than
# operativos/ansible-vault.
set -euo pipefail

vault_id=default
while (($# > 0)); do
  case $1 in
    --vault-id)
      vault_id=${2:?--vault-id needs a name}
      shift 2
      ;;
    *)
      echo "vault-pass-client.sh: unknown argument '$1'; usage: vault-pass-client.sh [--vault-id NAME]" >&2
      exit 2
      ;;
  esac
done

entry=${OPERATIVOS_VAULT_PASS_FOLDER:-operativos/ansible-vault}/$vault_id
if ! password=$(pass show "$entry"); then
  echo "vault-pass-client.sh: no vault password in pass at $entry; store one with: pass insert $entry" >&2
  exit 1
fi
printf '%s\n' "${password%%$'\n'*}"
