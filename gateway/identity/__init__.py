"""Teams, users, memberships, API tokens, and what routes inbound traffic to a team
(its phone numbers and voice-agent ids)."""
