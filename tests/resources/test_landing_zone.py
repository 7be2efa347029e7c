"""The local landing zone reads only regular files whose real path lies inside it."""

import logging
import os

import pytest

from resources.landing.local import LocalLandingStorage


@pytest.fixture
def zone(tmp_path):
    root = tmp_path / "zone"
    storage = LocalLandingStorage(root=str(root))
    storage.write_bytes("orders/orders_2024-05-06.csv", b"order_date,amount\n2024-05-06,1\n")
    secret = tmp_path / "secret.txt"
    secret.write_bytes(b"root:x:0:0\n")
    return storage, root, secret


def test_a_link_leaving_the_zone_is_refused_reported_and_never_read(zone, caplog):
    storage, root, secret = zone
    os.symlink(secret, root / "orders" / "orders_2024-05-07.csv")
    with caplog.at_level(logging.WARNING):
        files, refused = storage.scan("orders/*.csv")
    assert [file.key for file in files] == ["orders/orders_2024-05-06.csv"]
    assert list(refused) == ["orders/orders_2024-05-07.csv"]
    assert "symbolic link" in refused["orders/orders_2024-05-07.csv"]
    assert "orders/orders_2024-05-07.csv" in caplog.text and "symbolic link" in caplog.text
    assert [file.key for file in storage.list_files("orders/*.csv")] == ["orders/orders_2024-05-06.csv"]
    with pytest.raises(PermissionError, match="symbolic link"):
        storage.read_bytes("orders/orders_2024-05-07.csv")
    with pytest.raises(PermissionError):
        storage.reader()("orders/orders_2024-05-07.csv")
    assert not storage.exists("orders/orders_2024-05-07.csv")


def test_a_link_inside_the_zone_is_refused_too_its_target_lands_under_its_own_key(zone):
    storage, root, _ = zone
    # the target is listed already; reading the link would land the same bytes twice
    os.symlink(root / "orders" / "orders_2024-05-06.csv", root / "orders" / "orders_2024-05-08.csv")
    files, refused = storage.scan("orders/*.csv")
    assert [file.key for file in files] == ["orders/orders_2024-05-06.csv"]
    assert "symbolic link" in refused["orders/orders_2024-05-08.csv"]
    with pytest.raises(PermissionError):
        storage.read_bytes("orders/orders_2024-05-08.csv")


def test_a_linked_folder_and_dotdot_keys_do_not_leave_the_zone(zone, tmp_path):
    storage, root, secret = zone
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    (outside / "orders_2024-05-09.csv").write_bytes(b"x\n")
    os.symlink(outside, root / "linked")
    files, _ = storage.scan("*")
    assert all(not file.key.startswith("linked") for file in files)
    with pytest.raises(PermissionError, match="real path"):
        storage.read_bytes("linked/orders_2024-05-09.csv")
    with pytest.raises(PermissionError, match="leaves the landing zone"):
        storage.read_bytes("../secret.txt")
    with pytest.raises(PermissionError, match="leaves the landing zone"):
        storage.read_bytes(str(secret))
