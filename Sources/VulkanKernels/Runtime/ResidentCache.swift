import Synchronization

/// Data kept on a context's device for as long as the object it belongs to lives: a field's weights or
/// primitive table, a renderer's occupancy words. One per context, owned by it.
///
/// - Entries are keyed by the owning object and the entry's type, and remember the owner weakly, so a
///   new object that reuses a dead one's address never gets its data, and entries of dead owners are
///   dropped on the next insertion.
/// - The cached tensors refer to their context without retaining it (``Storage/init(residentByteCount:in:)``),
///   so the cache never keeps the context alive; the context empties it when it goes.
/// - Every read and write is under one `Mutex`. `make` runs under it too, so two threads never upload
///   the same data twice (uploads are short; nothing in `make` touches this cache again).
final class ResidentCache: Sendable {
    private struct Key: Hashable {
        let owner: ObjectIdentifier
        let type: ObjectIdentifier
    }

    private struct Entry: @unchecked Sendable {
        weak var owner: AnyObject?
        let value: Any
    }

    private let entries = Mutex<[Key: Entry]>([:])

    /// The `Value` cached for `owner`, made (and kept) on first use.
    func value<Value: Sendable>(for owner: AnyObject, as type: Value.Type = Value.self, make: () throws -> Value) throws -> Value {
        let key = Key(owner: ObjectIdentifier(owner), type: ObjectIdentifier(type))
        return try entries.withLock { entries in
            if let entry = entries[key], entry.owner === owner, let value = entry.value as? Value { return value }
            let value = try make()
            entries = entries.filter { $0.value.owner != nil }
            entries[key] = Entry(owner: owner, value: value)
            return value
        }
    }

    /// Forgets what is cached for `owner` as `type` (the owner's data changed).
    func remove<Value>(for owner: AnyObject, as type: Value.Type) {
        let key = Key(owner: ObjectIdentifier(owner), type: ObjectIdentifier(type))
        _ = entries.withLock { $0.removeValue(forKey: key) }
    }

    /// Entries held (tests).
    var count: Int { entries.withLock { $0.count } }

    func removeAll() { entries.withLock { $0.removeAll() } }
}
