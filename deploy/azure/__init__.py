"""Azure deployment: an Azure ML managed online endpoint and an Azure Functions app."""
