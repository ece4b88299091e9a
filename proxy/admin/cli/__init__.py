"""`python -m proxy keys|users|teams ...`: the admin API's operations on keys.db, without curl."""

from __future__ import annotations

from . import keys, users

KEYS = (keys.add_arguments, keys.run)
USERS = (users.add_user_arguments, users.run_users)
TEAMS = (users.add_team_arguments, users.run_teams)
