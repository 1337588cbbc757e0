import VulkanKernels
import XCTest

final class GEMMErrorTests: XCTestCase {
    func testShapeMismatchNamesTheShapes() throws {
        onEveryBackend { context in
            let a = try context.zeros(Float.self, shape: [4, 8])
            let b = try context.zeros(Float.self, shape: [7, 2])
            let c = try context.zeros(Float.self, shape: [4, 2])
            XCTAssertThrowsError(try context.gemm(a, b, into: c)) { error in
                guard case KernelError.shapeMismatch(_, [4, 8], [7, 2]) = error else { return XCTFail("\(error)") }
                XCTAssert("\(error)".contains("[4, 8]"))
            }
            let wrongC = try context.zeros(Float.self, shape: [4, 3])
            let goodB = try context.zeros(Float.self, shape: [8, 2])
            XCTAssertThrowsError(try context.gemm(a, goodB, into: wrongC)) { error in
                guard case KernelError.invalidShape(_, "C", [4, 3], _) = error else { return XCTFail("\(error)") }
            }
            let rank1 = try context.zeros(Float.self, shape: [8])
            XCTAssertThrowsError(try context.gemm(a, rank1, into: c))
            let batchedA = try context.zeros(Float.self, shape: [3, 4, 8])
            let batchedC = try context.zeros(Float.self, shape: [2, 4, 2])
            XCTAssertThrowsError(try context.gemm(batchedA, goodB, into: batchedC))
        }
    }

    func testNonFloatElementTypeIsRejected() throws {
        onEveryBackend { context in
            let a = try context.zeros(Int32.self, shape: [2, 2])
            XCTAssertThrowsError(try context.gemm(a, a, into: a)) { error in
                XCTAssertEqual(error as? KernelError, .unsupportedDType(op: "gemm", .int32))
            }
        }
    }

    func testTensorFromAnotherContextIsRejected() throws {
        let other = try ComputeContext(backend: .cpu)
        onEveryBackend { context in
            let a = try context.zeros(Float.self, shape: [2, 2])
            let foreign = try other.zeros(Float.self, shape: [2, 2])
            XCTAssertThrowsError(try context.gemm(a, foreign, into: a)) { error in
                XCTAssertEqual(error as? KernelError, .foreignTensor(op: "gemm", operand: "B"))
            }
        }
    }

    func testEmptyOutputAndNonFiniteScalarsAreRejected() throws {
        onEveryBackend { context in
            let a = try context.zeros(Float.self, shape: [0, 3])
            let b = try context.zeros(Float.self, shape: [3, 2])
            let c = try context.zeros(Float.self, shape: [0, 2])
            XCTAssertThrowsError(try context.gemm(a, b, into: c)) { error in
                XCTAssertEqual(error as? KernelError, .emptyTensor(op: "gemm", operand: "C"))
            }
            let a2 = try context.zeros(Float.self, shape: [2, 3])
            let c2 = try context.zeros(Float.self, shape: [2, 2])
            XCTAssertThrowsError(try context.gemm(a2, b, into: c2, alpha: .nan))
            XCTAssertThrowsError(try context.gemm(a2, b, into: c2, beta: .infinity))
        }
    }

    func testUploadCountAndShapeErrors() throws {
        onEveryBackend { context in
            XCTAssertThrowsError(try context.tensor([1, 2, 3] as [Float], shape: [2, 2])) { error in
                XCTAssertEqual(error as? KernelError, .countMismatch(expected: 4, got: 3))
            }
            XCTAssertThrowsError(try context.zeros(Float.self, shape: [2, -1]))
            XCTAssertThrowsError(try context.zeros(Float.self, shape: [1 << 40, 1 << 40]))
            let t = try context.zeros(Float.self, shape: [2, 3])
            XCTAssertThrowsError(try t.reshaped([4, 2]))
            XCTAssertEqual(try t.reshaped([3, 2]).shape, [3, 2])
        }
    }

    func testCommittedBatchRefusesMoreWork() throws {
        onEveryBackend { context in
            let a = try context.zeros(Float.self, shape: [2, 2])
            let batch = try context.makeBatch()
            try batch.commit()
            XCTAssertThrowsError(try batch.gemm(a, a, into: a))
        }
    }
}
