# State of staging (partial backend configuration of ../../root/backend.tf). The bucket is per account:
# give it with -backend-config="bucket=rates-tfstate-<account-id>" (README.md, "Bootstrap").
bucket       = "rates-tfstate-ACCOUNT_ID"
key          = "rates/staging/terraform.tfstate"
region       = "eu-west-1"
encrypt      = true
use_lockfile = true
