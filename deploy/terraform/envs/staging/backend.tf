# Remote state in S3 with S3-native locking (a .tflock object; no DynamoDB table needed).
# The bucket is per account and created once (see deploy/terraform/README.md, "Bootstrap"):
#   terraform init -backend-config="bucket=rates-tfstate-<account-id>"
terraform {
  backend "s3" {
    key          = "rates/staging/terraform.tfstate"
    region       = "eu-west-1"
    encrypt      = true
    use_lockfile = true
  }
}
