// expect: hydra::as_xtensor: this container's backend is not host_accessible
// A container on a device backend (hydra::cuda's memory is not readable on the host) cannot be
// adapted; the stand-in backend below has only what hydra::matrix needs.
#include <hydra/data/xtensor.hpp>
struct device_memory {
  static constexpr const char* name = "device";
  static constexpr bool host_accessible = false;
  template <class T>
  struct buffer {
    buffer() = default;
    explicit buffer(hydra::index) {}
    T* data() { return nullptr; }
    const T* data() const { return nullptr; }
    hydra::index size() const { return 0; }
  };
};
int main() {
  hydra::matrix<float, device_memory> m(2, 2);
  auto a = hydra::as_xtensor(m);
  (void)a;
}
