"""State and its rules: tables, engine and sessions, migrations, a service module per aggregate."""

import zoneinfo

# Zone rules come from the tzdata package this project pins, never from the host's copy,
# which can be years old (Chisinau's switch time changed in 2022; hosts still disagree).
zoneinfo.reset_tzpath(to=[])
