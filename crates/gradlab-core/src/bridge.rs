//! Tensors to and from host vectors. Reading converts from the tensor's dtype; writing checks the
//! length against the shape. Nothing here returns an empty or NaN vector on failure.
//!
//! ```
//! use burn::prelude::*;
//! use gradlab_core::bridge::{from_host, to_host};
//! let dev = Device::flex();
//! let t = from_host([1.0, 2.0, 3.0, 4.0].as_slice(), [2, 2], &dev).unwrap();
//! assert_eq!(to_host(t.transpose()).unwrap(), vec![1.0, 3.0, 2.0, 4.0]);
//! assert!(from_host([1.0].as_slice(), [2, 2], &dev).is_err()); // 1 value for a 2×2 tensor
//! ```

use crate::{CoreError, Result};
use burn::prelude::*;
use burn::tensor::DType;

fn read<E: burn::tensor::Element>(data: TensorData) -> Result<Vec<E>> {
    data.try_into_vec_as::<E>()
        .map_err(|e| CoreError::Read(format!("{e:?}")))
}

/// The values of a float tensor, row-major, as f64.
pub fn to_host<const D: usize>(t: Tensor<D>) -> Result<Vec<f64>> {
    read(t.into_data())
}

/// The values of a float tensor, row-major, as f32 (exact for f32 tensors).
pub fn to_host_f32<const D: usize>(t: Tensor<D>) -> Result<Vec<f32>> {
    read(t.into_data())
}

/// The values of an integer tensor, row-major, as i64.
pub fn ints_to_host<const D: usize>(t: Tensor<D, Int>) -> Result<Vec<i64>> {
    read(t.into_data())
}

/// The scalar of a one-element float tensor, as f64.
pub fn scalar_to_host<const D: usize>(t: Tensor<D>) -> Result<f64> {
    let v = to_host(t)?;
    match v.as_slice() {
        [x] => Ok(*x),
        _ => Err(CoreError::Length {
            what: "a scalar",
            expected: 1,
            got: v.len(),
        }),
    }
}

/// An f64 tensor of `shape` on `device` holding `values` (row-major).
pub fn from_host<const D: usize>(
    values: &[f64],
    shape: [usize; D],
    device: &Device,
) -> Result<Tensor<D>> {
    upload(values, shape, device, DType::F64)
}

/// A copy of `t` on `device` (through the host, keeping its dtype): moves a tensor between the
/// inner and the autodiff device as a fresh, untracked leaf.
pub fn copy_to<const D: usize>(t: Tensor<D>, device: &Device) -> Result<Tensor<D>> {
    let (dims, dtype) = (t.dims(), t.dtype());
    Ok(from_host(&to_host(t)?, dims, device)?.cast(dtype))
}

/// An f32 tensor of `shape` on `device` holding `values` (row-major).
pub fn from_host_f32<const D: usize>(
    values: &[f32],
    shape: [usize; D],
    device: &Device,
) -> Result<Tensor<D>> {
    upload(values, shape, device, DType::F32)
}

fn upload<E: burn::tensor::Element, const D: usize>(
    values: &[E],
    shape: [usize; D],
    device: &Device,
    dtype: DType,
) -> Result<Tensor<D>> {
    check_len(values.len(), &shape)?;
    Ok(Tensor::from_data(
        TensorData::new(values.to_vec(), shape),
        (device, dtype),
    ))
}

fn check_len(got: usize, shape: &[usize]) -> Result<()> {
    let expected: usize = shape.iter().product();
    if got == expected {
        Ok(())
    } else {
        Err(CoreError::Length {
            what: "a tensor",
            expected,
            got,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_survive_the_round_trip_in_each_dtype() {
        let dev = Device::flex();
        let v = [0.1, -2.5, 3.0e-8, 7.0, 1.0 / 3.0, -0.0];
        let t = from_host(&v, [2, 3], &dev).unwrap();
        assert_eq!(to_host(t.clone()).unwrap(), v.to_vec());
        let f: Vec<f32> = v.iter().map(|x| *x as f32).collect();
        let t32 = from_host_f32(&f, [3, 2], &dev).unwrap();
        assert_eq!(to_host_f32(t32.clone()).unwrap(), f);
        let widened: Vec<f64> = f.iter().map(|x| f64::from(*x)).collect();
        assert_eq!(to_host(t32).unwrap(), widened);
        let ints = Tensor::<1, Int>::from_data([3, -1, 4], &dev);
        assert_eq!(ints_to_host(ints).unwrap(), vec![3, -1, 4]);
        assert_eq!(scalar_to_host(t.sum()).unwrap(), v.iter().sum::<f64>());
    }

    #[test]
    fn wrong_lengths_are_errors() {
        let dev = Device::flex();
        assert_eq!(
            from_host(&[1.0; 5], [2, 3], &dev).unwrap_err(),
            CoreError::Length {
                what: "a tensor",
                expected: 6,
                got: 5
            }
        );
        let pair = from_host(&[1.0, 2.0], [2], &dev).unwrap();
        assert!(scalar_to_host(pair).is_err());
    }
}
