# Remote state in S3 with S3-native locking (a .tflock object; no DynamoDB table needed).
# Partial configuration: bucket, key, region and locking come from envs/<env>/backend.hcl, and the
# per-account bucket (created once, see deploy/terraform/README.md, "Bootstrap") on the command line:
#   TF_DATA_DIR=.terraform/dev terraform -chdir=deploy/terraform/root init \
#     -backend-config=../envs/dev/backend.hcl -backend-config="bucket=rates-tfstate-<account-id>"
terraform {
  backend "s3" {}
}
