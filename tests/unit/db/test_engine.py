import pytest

from rendercost.db.engine import create_db_engine
from rendercost.errors import InvalidRequest


def test_an_unsupported_database_is_refused_before_anything_is_written() -> None:
    with pytest.raises(InvalidRequest) as info:
        create_db_engine("mysql://user@127.0.0.1/rendercost")
    assert info.value.param == "database_url"
    assert "mysql" in info.value.message
