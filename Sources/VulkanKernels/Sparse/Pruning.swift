/// Pruning: dense weights → sparse formats. Every function keeps an exact number of entries,
/// `round((1 - sparsity) · count)`, so the achieved sparsity (the result's `sparsity`, computed from the
/// stored count) is the target up to one entry (or one block). Kept entries are stored even when their
/// value is 0, so the structure is what was asked for. Ties in magnitude are broken by position (lower
/// index kept first), so results are deterministic.
public enum SparsePruning {
    /// Keeps the `round((1 - sparsity) · rows · columns)` entries of largest magnitude of one layer.
    public static func magnitude<Element: FloatingPointElement>(_ weight: [Element], rows: Int, columns: Int,
                                                               sparsity: Double) throws -> CSRMatrix<Element> {
        try globalMagnitude([(weight, rows, columns)], sparsity: sparsity)[0]
    }

    /// One magnitude threshold over several layers together, so that `sparsity` of all their entries
    /// (not of each layer) are removed: layers with small weights lose more.
    public static func globalMagnitude<Element: FloatingPointElement>(_ layers: [(weight: [Element], rows: Int, columns: Int)],
                                                                     sparsity: Double) throws -> [CSRMatrix<Element>] {
        try checkSparsity(sparsity)
        for layer in layers {
            try validateDimensions(format: "CSR", rows: layer.rows, columns: layer.columns)
            guard layer.weight.count == layer.rows * layer.columns else {
                throw SparseMatrixError.countMismatch(format: "pruning", array: "weight", expected: layer.rows * layer.columns, got: layer.weight.count)
            }
        }
        let total = layers.reduce(0) { $0 + $1.weight.count }
        let keep = keptCount(total, sparsity)
        // Non-negative floats order like their bit patterns, so |w| is ranked as a UInt32 key. (Computed on
        // concrete Float arrays: generic code here is not specialised for callers in other modules.)
        let keys = layers.map { layer in SparseCPU.floatArray(layer.weight).map { $0.magnitude.bitPattern } }
        let (threshold, tiesKept) = largestKeys(keep, in: keys)
        var tiesLeft = tiesKept
        return zip(layers, keys).map { layer, keys in
            var kept: [Int] = []
            kept.reserveCapacity(keys.count / 2)
            for (position, key) in keys.enumerated() {
                if key > threshold { kept.append(position) } else if key == threshold && tiesLeft > 0 { tiesLeft -= 1; kept.append(position) }
            }
            return CSRMatrix(rows: layer.rows, columns: layer.columns, keptPositions: kept, from: layer.weight)
        }
    }

    /// Keeps exactly `round((1 - sparsity) · rows · columns)` positions chosen uniformly at random
    /// (selection sampling, Knuth TAOCP vol. 2, 3.4.2 Algorithm S); the same seed gives the same pattern.
    public static func random<Element: FloatingPointElement>(_ weight: [Element], rows: Int, columns: Int, sparsity: Double,
                                                            seed: UInt64) throws -> CSRMatrix<Element> {
        try checkSparsity(sparsity)
        try validateDimensions(format: "CSR", rows: rows, columns: columns)
        guard weight.count == rows * columns else {
            throw SparseMatrixError.countMismatch(format: "pruning", array: "weight", expected: rows * columns, got: weight.count)
        }
        var generator = SeededGenerator(seed: seed)
        var needed = keptCount(weight.count, sparsity)
        var kept: [Int] = []
        kept.reserveCapacity(needed)
        for position in 0..<weight.count where needed > 0 {
            if Int(generator.next() % UInt64(weight.count - position)) < needed { kept.append(position); needed -= 1 }
        }
        return CSRMatrix(rows: rows, columns: columns, keptPositions: kept, from: weight)
    }

    /// Keeps the `n` entries of largest magnitude in every group of `m` consecutive columns (ties: lower
    /// column first). `columns` must be a multiple of `m`.
    public static func nm<Element: FloatingPointElement>(_ weight: [Element], rows: Int, columns: Int, n: Int, m: Int) throws
        -> NMSparseMatrix<Element> {
        try NMSparseMatrix<Element>.validateShape(rows: rows, columns: columns, n: n, m: m)
        guard weight.count == rows * columns else {
            throw SparseMatrixError.countMismatch(format: "pruning", array: "weight", expected: rows * columns, got: weight.count)
        }
        let magnitudes = SparseCPU.floatArray(weight).map(\.magnitude)
        return NMSparseMatrix(rows: rows, columns: columns, n: n, m: m) { row, group in
            let base = row * columns + group * m
            // Insertion of the n largest (ties: lower position) into a small sorted buffer.
            var best: [Int] = []
            for position in 0..<m {
                let value = magnitudes[base + position]
                var slot = best.count
                while slot > 0 && magnitudes[base + best[slot - 1]] < value { slot -= 1 }
                if slot < n { best.insert(position, at: slot); if best.count > n { best.removeLast() } }
            }
            return best.sorted()
        } value: { weight[$0 * columns + $1] }
    }

    /// Keeps the `round((1 - sparsity) · blocks)` blocks of largest L2 norm (ties: lower block index).
    public static func blockMagnitude<Element: FloatingPointElement>(_ weight: [Element], rows: Int, columns: Int, blockSize: Int,
                                                                    sparsity: Double) throws -> BSRMatrix<Element> {
        try checkSparsity(sparsity)
        try BSRMatrix<Element>.validateShape(rows: rows, columns: columns, blockSize: blockSize)
        guard weight.count == rows * columns else {
            throw SparseMatrixError.countMismatch(format: "pruning", array: "weight", expected: rows * columns, got: weight.count)
        }
        let blockColumns = columns / blockSize, blocks = (rows / blockSize) * blockColumns
        var norms = [Double](repeating: 0, count: blocks)
        let floats = SparseCPU.floatArray(weight)
        for row in 0..<rows {
            for column in 0..<columns {
                let value = Double(floats[row * columns + column])
                norms[(row / blockSize) * blockColumns + column / blockSize] += value * value
            }
        }
        let ranked = (0..<blocks).sorted { norms[$0] != norms[$1] ? norms[$0] > norms[$1] : $0 < $1 }
        var kept = [Bool](repeating: false, count: blocks)
        for block in ranked.prefix(keptCount(blocks, sparsity)) { kept[block] = true }
        return BSRMatrix(rows: rows, columns: columns, blockSize: blockSize, value: { weight[$0 * columns + $1] }) {
            kept[$0 * blockColumns + $1]
        }
    }

    static func keptCount(_ total: Int, _ sparsity: Double) -> Int {
        min(total, max(0, Int(((1 - sparsity) * Double(total)).rounded())))
    }

    private static func checkSparsity(_ sparsity: Double) throws {
        guard sparsity.isFinite, (0...1).contains(sparsity) else {
            throw SparseMatrixError.invalidParameter(name: "sparsity", value: "\(sparsity)", reason: "must be in 0...1")
        }
    }

    /// The key `t` and count `ties` such that keeping every key > t plus the first `ties` keys == t keeps
    /// exactly `count` keys. Radix select on two 16-bit digits: O(total), no sort.
    private static func largestKeys(_ count: Int, in layers: [[UInt32]]) -> (threshold: UInt32, ties: Int) {
        guard count > 0 else { return (UInt32.max, 0) }
        var wanted = count
        var prefix: UInt32 = 0
        for (shift, mask) in [(UInt32(16), UInt32(0)), (0, 0xFFFF_0000)] {
            var histogram = [Int](repeating: 0, count: 65536)
            for layer in layers {
                for key in layer where key & mask == prefix & mask { histogram[Int((key >> shift) & 0xFFFF)] += 1 }
            }
            var digit = 65535
            while histogram[digit] < wanted { wanted -= histogram[digit]; digit -= 1 }
            prefix |= UInt32(digit) << shift
        }
        return (prefix, wanted)
    }
}

