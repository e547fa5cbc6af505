"""Google Cloud: 2nd-generation Cloud Functions triggered by Firestore and Realtime Database
writes, with the helpdesk outbox kept in Firestore."""
