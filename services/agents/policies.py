"""Who may call each agents method (enforced by the interceptor; see libs/authz.py).

- Admins manage agent configurations, prompt variants and experiments; managers read them,
  and the results.
- The AI agent calls with the `agents` service token (the name crm and messaging already
  admit for the AI: AI status changes, assignment mirrors, AI answers): it resolves its
  prompt on every turn, reads configurations and variants, and records dialogue analyses.
  Its ResolvePrompt forwards that token to crm for the assignment's mirror, which crm's
  policy admits. Users may resolve a prompt too (to see what a client gets: it assigns the
  client like the agent's first call would).
- Conversion analyses are run by admins (they read every assigned client's history).
"""

from libs.authz import ADMIN, ANY_USER, SERVICES

_AI_AGENT = SERVICES("agents")

POLICIES = {
    "soulkg.agents.v1.AgentConfigurationService": {
        "CreateAgentConfiguration": ADMIN,
        "GetAgentConfiguration": ANY_USER | _AI_AGENT,
        "ListAgentConfigurations": ANY_USER | _AI_AGENT,
        "UpdateAgentConfiguration": ADMIN,
        "DeleteAgentConfiguration": ADMIN,
    },
    "soulkg.agents.v1.PromptVariantService": {
        "CreatePromptVariant": ADMIN,
        "GetPromptVariant": ANY_USER | _AI_AGENT,
        "ListPromptVariants": ANY_USER | _AI_AGENT,
        "UpdatePromptVariant": ADMIN,
        "DeletePromptVariant": ADMIN,
    },
    "soulkg.agents.v1.ExperimentService": {
        "CreateExperiment": ADMIN,
        "GetExperiment": ANY_USER | _AI_AGENT,
        "ListExperiments": ANY_USER | _AI_AGENT,
        "UpdateExperiment": ADMIN,
        "StartExperiment": ADMIN,
        "PauseExperiment": ADMIN,
        "CompleteExperiment": ADMIN,
        "CancelExperiment": ADMIN,
        "GetExperimentResults": ANY_USER,
    },
    "soulkg.agents.v1.PromptService": {
        "ResolvePrompt": ANY_USER | _AI_AGENT,
    },
    "soulkg.agents.v1.DialogueAnalysisService": {
        "CreateDialogueAnalysis": ADMIN | _AI_AGENT,
        "GetDialogueAnalysis": ANY_USER | _AI_AGENT,
        "ListDialogueAnalyses": ANY_USER | _AI_AGENT,
        "RunConversionAnalysis": ADMIN,
    },
}
