terraform {
  required_version = ">= 1.11" # write-only attributes keep secret values out of state

  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = "~> 5.100"
    }
  }
}
