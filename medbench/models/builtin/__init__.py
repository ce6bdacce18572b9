"""Built-in stand-in models served over a local OpenAI-compatible endpoint (`server`): the rule-based
reference agent (text and tools protocols), the do-nothing and give-up baselines, and the adversaries
that misbehave on purpose. The real client for any endpoint is `medbench.models.client`."""
