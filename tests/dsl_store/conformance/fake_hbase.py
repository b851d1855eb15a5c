"""An in-memory stand-in for HBase's Thrift1 gateway: only the calls the HBase connector makes.

It speaks real Thrift (happybase's own IDL, binary protocol, buffered
transport) on a loopback port, so the connector's code runs end to end; the
semantics follow HBase's documentation (single-row atomicity, `checkAndPut`
with an absent expected value meaning "the cell does not exist"). It is not
HBase, and passing against it proves the connector's logic, not HBase itself.
"""

from __future__ import annotations

import importlib
import itertools
import threading
import time
from typing import Any

import happybase  # noqa: F401  (compiles Hbase_thrift)
from thriftpy2.server import TThreadedServer
from thriftpy2.thrift import TProcessor
from thriftpy2.transport import TServerSocket

hbase_thrift: Any = importlib.import_module("Hbase_thrift")

Row = dict[bytes, tuple[bytes, int]]


def _b(value: bytes | str) -> bytes:
    return value.encode() if isinstance(value, str) else value


def _wanted(column: bytes, columns: list[bytes] | None) -> bool:
    if not columns:
        return True
    family = column.split(b":", 1)[0]
    return any(_b(c) == column or _b(c).rstrip(b":") == family for c in columns)


class FakeHbaseHandler:
    """Tables of rows of cells, each cell the newest (value, timestamp in ms); one lock makes rows atomic."""

    def __init__(self) -> None:
        self.tables: dict[bytes, dict[bytes, Row]] = {}
        self.scanners: dict[int, list[Any]] = {}
        self.ids = itertools.count(1)
        self.lock = threading.Lock()

    def _result(self, row: bytes, cells: Row, columns: list[bytes] | None) -> Any:
        chosen = {c: hbase_thrift.TCell(value=v, timestamp=t) for c, (v, t) in cells.items() if _wanted(c, columns)}
        return hbase_thrift.TRowResult(row=row, columns=chosen) if chosen else None

    def getTableNames(self) -> list[bytes]:
        with self.lock:
            return sorted(self.tables)

    def createTable(self, tableName: bytes, columnFamilies: list[Any]) -> None:
        with self.lock:
            if _b(tableName) in self.tables:
                raise hbase_thrift.AlreadyExists(message="table exists")
            self.tables[_b(tableName)] = {}

    def disableTable(self, tableName: bytes) -> None:
        return None

    def deleteTable(self, tableName: bytes) -> None:
        with self.lock:
            self.tables.pop(_b(tableName), None)

    def getRowWithColumns(self, tableName: bytes, row: bytes, columns: list[bytes], attributes: Any) -> list[Any]:
        with self.lock:
            cells = self.tables[_b(tableName)].get(_b(row))
            result = self._result(_b(row), cells, columns) if cells else None
            return [result] if result else []

    def getRowsWithColumns(
        self,
        tableName: bytes,
        rows: list[bytes],
        columns: list[bytes],
        attributes: Any,
    ) -> list[Any]:
        return [found for row in rows for found in self.getRowWithColumns(tableName, row, columns, attributes)]

    def _mutate(self, table: dict[bytes, Row], row: bytes, mutations: list[Any]) -> None:
        cells = table.setdefault(row, {})
        now = int(time.time() * 1000)
        for mutation in mutations:
            column = _b(mutation.column)
            if mutation.isDelete:
                for name in [c for c in cells if _wanted(c, [column])]:
                    del cells[name]
            else:
                cells[column] = (_b(mutation.value), now)
        if not cells:
            del table[row]

    def mutateRow(self, tableName: bytes, row: bytes, mutations: list[Any], attributes: Any) -> None:
        with self.lock:
            self._mutate(self.tables[_b(tableName)], _b(row), mutations)

    def mutateRows(self, tableName: bytes, rowBatches: list[Any], attributes: Any) -> None:
        with self.lock:
            for batch in rowBatches:
                self._mutate(self.tables[_b(tableName)], _b(batch.row), batch.mutations)

    def checkAndPut(
        self,
        tableName: bytes,
        row: bytes,
        column: bytes,
        value: bytes | None,
        mput: Any,
        attributes: Any,
    ) -> bool:
        with self.lock:
            table = self.tables[_b(tableName)]
            current = table.get(_b(row), {}).get(_b(column))
            if (current[0] if current else None) != (None if value is None else _b(value)):
                return False
            self._mutate(table, _b(row), [mput])
            return True

    def scannerOpenWithScan(self, tableName: bytes, scan: Any, attributes: Any) -> int:
        with self.lock:
            start, stop = _b(scan.startRow or b""), _b(scan.stopRow or b"")
            rows = sorted(self.tables[_b(tableName)].items())
            found = [
                self._result(row, cells, scan.columns)
                for row, cells in rows
                if row >= start and (not stop or row < stop)
            ]
            scanner = next(self.ids)
            self.scanners[scanner] = [result for result in found if result is not None]
            return scanner

    def scannerGetList(self, id: int, nbRows: int) -> list[Any]:
        with self.lock:
            pending = self.scanners.get(id, [])
            batch, self.scanners[id] = pending[:nbRows], pending[nbRows:]
            return batch

    def scannerClose(self, id: int) -> None:
        with self.lock:
            self.scanners.pop(id, None)


class FakeHbaseServer:
    """The handler behind a Thrift server on 127.0.0.1 and a free port, served from daemon threads."""

    def __init__(self) -> None:
        # Built by hand: thriftpy2's make_server refuses port 0, and its client timeout would drop pooled connections.
        listening = TServerSocket(host="127.0.0.1", port=0, client_timeout=None)
        self.server = TThreadedServer(TProcessor(hbase_thrift.Hbase, FakeHbaseHandler()), listening)
        self.server.trans.listen()
        self.port: int = self.server.trans.sock.getsockname()[1]
        self._thread = threading.Thread(target=self._accept, name="fake-hbase", daemon=True)
        self._thread.start()

    def _accept(self) -> None:
        while not self.server.closed:
            try:
                client = self.server.trans.accept()
            except OSError:
                return
            threading.Thread(target=self.server.handle, args=(client,), daemon=True).start()

    def close(self) -> None:
        self.server.closed = True
        self.server.trans.close()  # wakes the accepting thread, which then ends
