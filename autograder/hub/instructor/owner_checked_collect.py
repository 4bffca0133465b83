"""``nbgrader collect`` that takes each submission only from the student it names.

Everyone may write into the exchange's inbound folder, and a submission's folder name says whose it is
(``<student>+<lab>+<timestamp>+<random>``): any student can drop one there under a classmate's name. Stock
nbgrader notices that the folder's Unix owner differs (``check_owner``), warns, and collects it as the
named student's anyway, so with ``--update`` a newer forgery replaces the classmate's real submission.
Here a submission that the named student did not make is left in the exchange, and collect says which
one and who made it, as an error; the named student's own latest submission is collected as usual.
nbgrader_config.py beside this file makes it the course's collect (``ExchangeFactory.collect``).
"""

import os
import pwd

from nbgrader.exchange.default.collect import ExchangeCollect


def owner(path: str) -> str:
    """The Unix name of whoever made ``path`` (not following a link), or its number if no user has it."""
    uid = os.lstat(path).st_uid
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return f"uid {uid}"


class OwnerCheckedCollect(ExchangeCollect):
    def _path_to_record(self, path: str) -> dict:
        record = super()._path_to_record(path)
        made_by = owner(path)
        if made_by != record["username"]:
            self.log.error("not collected: %s claims to be %s's submission, but %s made it (a forgery?); "
                           "it stays in the exchange", path, record["username"], made_by)
            # A group of its own (nbgrader keeps each student's latest), dropped in init_src below, so a
            # forgery can neither be collected nor hide the named student's own submission.
            record["username"] = ("forged", record["username"], made_by)
        return record

    def init_src(self) -> None:
        super().init_src()
        self.src_records = [record for record in self.src_records if isinstance(record["username"], str)]
