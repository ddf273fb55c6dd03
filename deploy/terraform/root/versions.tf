terraform {
  required_version = ">= 1.11" # write-only secret values; S3 backend native locking

  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = "~> 5.100"
    }
  }
}
