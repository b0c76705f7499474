#pragma once
// hydra::LabelRange: what the metrics need from an array of labels or flags (cluster labels,
// class labels, "is flipped" marks). The values themselves are checked at run time, where the
// message can name the index at fault.

#include <concepts>
#include <cstddef>
#include <ranges>
#include <type_traits>

namespace hydra {

namespace detail {
// Plain char and the character types are text, not numbers: '1' would silently read as 49.
template <class V>
concept character_type = std::same_as<V, char> || std::same_as<V, wchar_t> || std::same_as<V, char8_t> ||
                         std::same_as<V, char16_t> || std::same_as<V, char32_t>;

template <class V>
concept label_value = std::same_as<V, bool> || (std::integral<V> && !character_type<V>);
} // namespace detail

/// A random-access, sized range of bools or integers (signed char and unsigned char count as
/// integers; plain char does not): `std::vector<bool>`, `std::vector<hydra::index>`,
/// `std::span<const hydra::label_type>`, `std::vector<std::uint8_t>`, ...
template <class R>
concept LabelRange = std::ranges::random_access_range<const R> && std::ranges::sized_range<const R> &&
                     detail::label_value<std::remove_cvref_t<std::ranges::range_value_t<const R>>>;

} // namespace hydra
