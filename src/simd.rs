//! Runtime choice of the widest x86-64 vector extension for the hot loops of the teacher-student
//! engine and the k-DPP sampler. The binary is built for the portable x86-64 baseline (SSE2);
//! `widest!` compiles one loop body three times (AVX-512F, AVX2, baseline) and calls the widest the
//! CPU has. The loops it wraps use only IEEE-754 additions, multiplications, divisions and square
//! roots in a fixed order (Rust never contracts a·b + c into a fused multiply-add), so all three
//! give the same bits. `widest_fused!` does the same with fused multiply-adds where the CPU has
//! them.

/// `widest!(pub fn name(args) -> T => body);` defines `name`, which calls the function `body`
/// (normally `#[inline(always)]`) compiled for the widest instruction set present.
macro_rules! widest {
    ($(#[$m:meta])* $vis:vis fn $name:ident($($arg:ident: $ty:ty),* $(,)?) $(-> $ret:ty)? => $body:path) => {
        $(#[$m])*
        $vis fn $name($($arg: $ty),*) $(-> $ret)? {
            #[cfg(target_arch = "x86_64")]
            {
                #[target_feature(enable = "avx512f")]
                fn avx512($($arg: $ty),*) $(-> $ret)? {
                    $body($($arg),*)
                }
                #[target_feature(enable = "avx2")]
                fn avx2($($arg: $ty),*) $(-> $ret)? {
                    $body($($arg),*)
                }
                if std::arch::is_x86_feature_detected!("avx512f") {
                    // SAFETY: the CPU has AVX-512F, the only requirement of `avx512`.
                    return unsafe { avx512($($arg),*) };
                }
                if std::arch::is_x86_feature_detected!("avx2") {
                    // SAFETY: the CPU has AVX2, the only requirement of `avx2`.
                    return unsafe { avx2($($arg),*) };
                }
            }
            $body($($arg),*)
        }
    };
}
pub(crate) use widest;

/// Like [`widest!`], for loops whose multiply-adds go through [`madd`]: `$body` is generic over
/// `const FUSED: bool`. The AVX-512 and AVX2 versions are compiled with FMA and run only on CPUs
/// that have it (`$body::<true>`: each a·b + c one correctly rounded operation, so both widths give
/// the same bits and twice the multiply-adds per instruction); the portable version
/// (`$body::<false>`) rounds the product and the sum separately, and may differ in the last bits.
macro_rules! widest_fused {
    ($(#[$m:meta])* $vis:vis fn $name:ident($($arg:ident: $ty:ty),* $(,)?) $(-> $ret:ty)? => $body:ident) => {
        $(#[$m])*
        $vis fn $name($($arg: $ty),*) $(-> $ret)? {
            #[cfg(target_arch = "x86_64")]
            {
                #[target_feature(enable = "avx512f,fma")]
                fn avx512($($arg: $ty),*) $(-> $ret)? {
                    $body::<true>($($arg),*)
                }
                #[target_feature(enable = "avx2,fma")]
                fn avx2($($arg: $ty),*) $(-> $ret)? {
                    $body::<true>($($arg),*)
                }
                if std::arch::is_x86_feature_detected!("fma") {
                    if std::arch::is_x86_feature_detected!("avx512f") {
                        // SAFETY: the CPU has AVX-512F and FMA, the only requirements of `avx512`.
                        return unsafe { avx512($($arg),*) };
                    }
                    if std::arch::is_x86_feature_detected!("avx2") {
                        // SAFETY: the CPU has AVX2 and FMA, the only requirements of `avx2`.
                        return unsafe { avx2($($arg),*) };
                    }
                }
            }
            $body::<false>($($arg),*)
        }
    };
}
pub(crate) use widest_fused;

/// `a · b + c`, fused (one rounding) when `FUSED`: the multiply-add of [`widest_fused!`] bodies.
#[inline(always)]
pub(crate) fn madd<const FUSED: bool>(a: f64, b: f64, c: f64) -> f64 {
    if FUSED {
        a.mul_add(b, c)
    } else {
        a * b + c
    }
}
