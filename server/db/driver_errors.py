"""The one map from PostgreSQL driver errors to the server's errors.

Every statement runs inside `translate_database_errors()`, so no capability sees a psycopg
exception and no driver error reaches a caller as INTERNAL.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import psycopg
import psycopg.errors
from psycopg_pool import PoolTimeout

from ..core import errors


def unavailable(err: BaseException) -> errors.Unavailable:
    """The database could not be reached: say so, with the driver's first line."""
    detail = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
    return errors.Unavailable(f"the database cannot be reached: {detail}")


@contextlib.contextmanager
def translate_database_errors() -> Iterator[None]:
    """Turn driver errors raised in the block into the server's errors."""
    try:
        yield
    except errors.WorkflowStateError:
        raise
    except psycopg.errors.QueryCanceled as err:
        raise errors.DeadlineExceeded("the database cancelled the statement before it finished") from err
    except (psycopg.errors.SerializationFailure, psycopg.errors.DeadlockDetected) as err:
        raise errors.Aborted(f"a concurrent change conflicted with this one; retry it ({err.sqlstate})") from err
    except psycopg.errors.UniqueViolation as err:
        raise errors.AlreadyExists(f"already exists: {err.diag.message_detail or err}") from err
    except psycopg.errors.DataError as err:
        # Input checks run before the database, so this is a value PostgreSQL still refused.
        raise errors.InvalidArgument(f"the database refused a value: {err.diag.message_primary or err}") from err
    except (psycopg.OperationalError, PoolTimeout) as err:
        raise unavailable(err) from err
