"""The one map from PostgreSQL driver errors to the server's errors.

Every statement runs inside `translate_database_errors()`, so no capability sees a psycopg
exception and no driver error reaches a caller as INTERNAL. Each message says whether anything
was written: an error answer means nothing was, except when the connection died after the
statement went out (`outcome_unknown`), which the server cannot settle and says so.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import psycopg
import psycopg.errors

from ..core import errors


def first_line(err: BaseException) -> str:
    """The driver's first line of an error (its type when it has no text)."""
    text = str(err).strip()
    return text.splitlines()[0] if text else type(err).__name__


def unavailable(err: BaseException) -> errors.Unavailable:
    """The database could not be reached before the statement went out: nothing was written."""
    return errors.Unavailable(f"the database cannot be reached: {first_line(err)}; nothing was written")


def outcome_unknown(err: BaseException) -> errors.Unavailable:
    """The connection died after the statement went out: PostgreSQL may have committed it just before.

    No answer can be certain here (the commit and its reply are not one event), so the message says
    so instead of promising "nothing was written"; reading the state back settles it, and repeating a
    status change the step or run already has is answered as done."""
    return errors.Unavailable(
        f"the connection to the database was lost while the statement ran ({first_line(err)}); "
        f"{errors.OUTCOME_IS_UNKNOWN}: it may have been applied, read the state back before repeating it"
    )


@contextlib.contextmanager
def translate_database_errors() -> Iterator[None]:
    """Turn driver errors raised in the block into the server's errors."""
    try:
        yield
    except errors.WorkflowStateError:
        raise
    except psycopg.errors.QueryCanceled as err:
        raise errors.DeadlineExceeded("the database cancelled the statement before it finished; nothing was written") from err
    except (psycopg.errors.SerializationFailure, psycopg.errors.DeadlockDetected) as err:
        raise errors.Aborted(f"a concurrent change conflicted with this one; retry it ({err.sqlstate})") from err
    except psycopg.errors.UniqueViolation as err:
        raise errors.AlreadyExists(f"already exists: {err.diag.message_detail or err}") from err
    except psycopg.errors.DataError as err:
        # Input checks run before the database, so this is a value PostgreSQL still refused.
        raise errors.InvalidArgument(f"the database refused a value: {err.diag.message_primary or err}", field=None) from err
    except psycopg.OperationalError as err:
        raise unavailable(err) from err
