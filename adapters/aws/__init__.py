"""The AWS target: Lambda handlers for API Gateway, S3 and Kinesis, a DynamoDB store and outbox."""
